//! Where attachments' bytes live, which types are let in, and the signed
//! URLs they are fetched by (desk-api.md, "Attachments").
//!
//! - **Storage** is an [`ObjectStore`]: by default a directory beside the
//!   database (`<database>.files/`, zero configuration); with
//!   `CHATGATE_FILES_URL=s3://bucket/prefix` any S3-compatible service (the
//!   `AWS_*` environment gives its endpoint and keys), which several
//!   instances share. An upload is streamed to the store as it arrives
//!   (object_store's `BufWriter` switches to a multipart upload past its
//!   buffer), never held whole in memory.
//! - **Types are judged by content**, not by name or the client's
//!   `Content-Type`: the first bytes are sniffed ([`sniff`]) and compared to
//!   an allow-list; executables and HTML never pass.
//! - **URLs are signed** with a key derived from the deployment's secret and
//!   expire: `/files/<id>/<name>?expires=<unix s>&signature=<hex>`; the
//!   signature covers the id, the variant (the file or its thumbnail) and
//!   the expiry, not the name (so a file renamed in a link still needs a
//!   valid signature for its id).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::domain::Attachment;

/// Bytes read before the type is judged (every signature we check, and
/// an image's dimensions, are within them).
const SNIFF_BYTES: usize = 8 * 1024;

/// Largest image accepted, by its header: a side in pixels, and pixels in
/// all. A bigger one is no chat picture, and decoding it could take
/// gigabytes (a few kilobytes of PNG can claim 50,000 × 50,000).
pub const MAX_IMAGE_SIDE: u32 = 10_000;
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;
/// Most memory one image decode may allocate, whatever its header said.
const DECODE_BYTES: u64 = 192 * 1024 * 1024;
/// A thumbnail's longest side, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Images decoded at once (each may hold `DECODE_BYTES`).
const DECODES_AT_ONCE: usize = 2;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("this type of file is not allowed")]
    TypeNotAllowed,
    #[error("images may be at most {MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS} in all")]
    ImageTooLarge,
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("file storage failed: {0}")]
    Storage(String),
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub size: u64,
    pub content_type: &'static str,
    /// Images' pixel size, read from their header.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The file itself, or its thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    File,
    Thumbnail,
}

impl Variant {
    fn tag(self) -> &'static str {
        match self {
            Variant::File => "file",
            Variant::Thumbnail => "thumbnail",
        }
    }
}

pub struct Files {
    store: Arc<dyn ObjectStore>,
    /// Bounds the images being decoded for thumbnails.
    decoding: tokio::sync::Semaphore,
    /// Signs and checks download URLs.
    signer: Signer,
    /// Largest upload, in bytes.
    pub max_bytes: u64,
    /// What an upload keeps in memory before writing it out: see
    /// [`Files::buffer_for`].
    buffer_bytes: usize,
}

/// Signs download URLs and checks them: cheap to clone, so every place
/// that builds a message for a client (the hub's encoders, the doors'
/// responses) signs its attachments' URLs when it builds them.
#[derive(Clone)]
pub struct Signer {
    key: Arc<[u8]>,
    /// How long a signed URL stays valid, in seconds.
    pub ttl_secs: i64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// URLs signed with a key derived from `secret`, valid `ttl_secs`.
    pub fn new(secret: &[u8], ttl_secs: i64) -> Signer {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(b"chatgate files v1");
        Signer {
            key: Arc::from(&mac.finalize().into_bytes()[..]),
            ttl_secs,
        }
    }

    fn signature(&self, id: Uuid, variant: Variant, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(format!("{id}:{}:{expires}", variant.tag()).as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The signed path of file `id` (named `name` in the path), valid for
    /// `ttl_secs` from `now_secs`.
    pub fn url(
        &self,
        id: Uuid,
        name: &str,
        variant: Variant,
        now_secs: i64,
        ttl_secs: i64,
    ) -> String {
        let expires = now_secs + ttl_secs;
        let signature = self.signature(id, variant, expires);
        let last = match variant {
            Variant::File => percent_encode(name),
            Variant::Thumbnail => "thumbnail".to_string(),
        };
        format!("/files/{id}/{last}?expires={expires}&signature={signature}")
    }

    /// The URLs of `attachment` (its file, and its thumbnail for an image),
    /// valid for the configured time from now.
    pub fn links(&self, attachment: &Attachment) -> (String, Option<String>) {
        let now = crate::domain::time::now_ms() / 1000;
        let ttl = self.ttl_secs;
        let (id, name) = (attachment.id.0, attachment.name.as_str());
        let url = self.url(id, name, Variant::File, now, ttl);
        // Every image stored has a thumbnail (`Files::receive`).
        let thumbnail = attachment
            .is_image()
            .then(|| self.url(id, name, Variant::Thumbnail, now, ttl));
        (url, thumbnail)
    }

    /// Whether `signature` is this deployment's for `id`, `variant` and
    /// `expires`, and `expires` has not passed.
    pub fn verify(
        &self,
        id: Uuid,
        variant: Variant,
        expires: i64,
        signature: &str,
        now_secs: i64,
    ) -> bool {
        if expires < now_secs {
            return false;
        }
        let expected = self.signature(id, variant, expires);
        // Constant time: compare every byte whatever the first difference.
        expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl Files {
    /// Files kept in `store`, URLs signed by `signer`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        signer: Signer,
        max_bytes: u64,
        buffer_bytes: usize,
    ) -> Files {
        Files {
            store,
            decoding: tokio::sync::Semaphore::new(DECODES_AT_ONCE),
            signer,
            max_bytes,
            buffer_bytes,
        }
    }

    /// How much of an upload is held in memory before it is written out
    /// to the store at `location`: 256 KiB for a directory (50 uploads at
    /// once then hold 12.5 MiB), 5 MiB for S3, whose multipart uploads
    /// take parts of at least that (a file under it is one PUT).
    pub fn buffer_for(location: &str) -> usize {
        if location.starts_with("s3://") {
            5 * 1024 * 1024
        } else {
            256 * 1024
        }
    }

    /// The URL signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The store of `location`: `s3://bucket[/prefix]` (S3 or any
    /// S3-compatible service configured by the `AWS_*` environment:
    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`), else a directory, created private
    /// if missing.
    pub fn store_at(location: &str) -> Result<Arc<dyn ObjectStore>, String> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            // `?endpoint=...&allow_http=true&region=...`: object_store's
            // configuration keys, beside (and over) the environment's.
            for (key, value) in form_urlencoded_pairs(query) {
                let key: object_store::aws::AmazonS3ConfigKey = key
                    .parse()
                    .map_err(|e| format!("S3 store option `{key}`: {e}"))?;
                builder = builder.with_config(key, value);
            }
            let s3 = builder.build().map_err(|e| format!("S3 store: {e}"))?;
            let store: Arc<dyn ObjectStore> = Arc::new(s3);
            return Ok(if prefix.trim_matches('/').is_empty() {
                store
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(
                    store,
                    prefix.trim_matches('/'),
                ))
            });
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        create_private_dir(dir).map_err(|e| format!("files directory {dir}: {e}"))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("files directory {dir}: {e}"))?;
        Ok(Arc::new(local))
    }

    fn path(id: Uuid, variant: Variant) -> Path {
        match variant {
            Variant::File => Path::from(format!("attachments/{id}")),
            Variant::Thumbnail => Path::from(format!("attachments/{id}.thumbnail")),
        }
    }

    /// Streams `body` into the store as file `id`: refused once it passes
    /// `max_bytes`, or when its first bytes are not an allowed type (what
    /// was written by then is removed).
    pub async fn receive<S>(&self, id: Uuid, body: S) -> Result<Received, FileError>
    where
        S: Stream<Item = Result<Bytes, String>> + Unpin,
    {
        let mut body = body;
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let mut pending: Vec<Bytes> = Vec::new();
        let mut size: u64 = 0;
        let mut ended = false;
        // The head first: nothing is stored before the type is judged.
        while head.len() < SNIFF_BYTES {
            match body.next().await {
                Some(chunk) => {
                    let bytes = chunk.map_err(FileError::Interrupted)?;
                    size += bytes.len() as u64;
                    if size > self.max_bytes {
                        return Err(FileError::TooLarge(self.max_bytes));
                    }
                    let take = (SNIFF_BYTES - head.len()).min(bytes.len());
                    head.extend_from_slice(&bytes[..take]);
                    pending.push(bytes);
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let content_type = sniff(&head, ended).ok_or(FileError::TypeNotAllowed)?;
        let image = content_type.starts_with("image/");
        let (width, height) = if image {
            // An image whose header cannot be read is refused: it would
            // be shown as a picture that is none.
            let size = imagesize::blob_size(&head).map_err(|_| FileError::TypeNotAllowed)?;
            let (w, h) = (size.width as u64, size.height as u64);
            if w == 0 || h == 0 {
                return Err(FileError::TypeNotAllowed);
            }
            if w > u64::from(MAX_IMAGE_SIDE)
                || h > u64::from(MAX_IMAGE_SIDE)
                || w * h > MAX_IMAGE_PIXELS
            {
                return Err(FileError::ImageTooLarge);
            }
            (Some(w as u32), Some(h as u32))
        } else {
            (None, None)
        };
        let path = Files::path(id, Variant::File);
        let mut writer =
            BufWriter::with_capacity(self.store.clone(), path.clone(), self.buffer_bytes);
        let written = async {
            for bytes in pending {
                writer.write_all(&bytes).await.map_err(storage)?;
            }
            // (A body that ended within the head is not polled again.)
            while let Some(chunk) = if ended { None } else { body.next().await } {
                let bytes = chunk.map_err(FileError::Interrupted)?;
                size += bytes.len() as u64;
                if size > self.max_bytes {
                    return Err(FileError::TooLarge(self.max_bytes));
                }
                writer.write_all(&bytes).await.map_err(storage)?;
            }
            writer.shutdown().await.map_err(storage)
        }
        .await;
        if let Err(e) = written {
            let _ = writer.abort().await;
            let _ = self.store.delete(&path).await;
            return Err(e);
        }
        if image {
            if let Err(e) = self.make_thumbnail(id).await {
                let _ = self.delete(id).await;
                return Err(e);
            }
        }
        Ok(Received {
            size,
            content_type,
            width,
            height,
        })
    }

    /// Decodes stored image `id` (within `DECODE_BYTES`, a few at a time)
    /// and stores its thumbnail: a JPEG at most `THUMBNAIL_SIDE` a side. An
    /// image that does not decode is refused as not allowed.
    async fn make_thumbnail(&self, id: Uuid) -> Result<(), FileError> {
        let _permit = self.decoding.acquire().await.map_err(storage)?;
        let data = self
            .store
            .get(&Files::path(id, Variant::File))
            .await
            .map_err(storage)?
            .bytes()
            .await
            .map_err(storage)?;
        let jpeg = tokio::task::spawn_blocking(move || thumbnail(&data))
            .await
            .map_err(storage)?
            .map_err(|e| match e {
                image::ImageError::Limits(_) => FileError::ImageTooLarge,
                _ => FileError::TypeNotAllowed,
            })?;
        self.store
            .put(&Files::path(id, Variant::Thumbnail), jpeg.into())
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// The stored bytes of file `id` (or its thumbnail), as a stream.
    pub async fn read(
        &self,
        id: Uuid,
        variant: Variant,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>> + Send + 'static, FileError>
    {
        let got = self
            .store
            .get(&Files::path(id, variant))
            .await
            .map_err(storage)?;
        Ok(got.into_stream())
    }

    /// Removes file `id` and its thumbnail (a missing one is no error).
    pub async fn delete(&self, id: Uuid) -> Result<(), FileError> {
        for variant in [Variant::File, Variant::Thumbnail] {
            match self.store.delete(&Files::path(id, variant)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage(e)),
            }
        }
        Ok(())
    }
}

/// `a=1&b=2` as pairs (values URL-decoded).
fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}

fn storage(e: impl std::fmt::Display) -> FileError {
    FileError::Storage(e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JPEG of `data` (an image) at most `THUMBNAIL_SIDE` a side, flattened
/// onto white; refused beyond `MAX_IMAGE_SIDE` or `DECODE_BYTES`.
pub fn thumbnail(data: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(data)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(DECODE_BYTES);
    reader.limits(limits);
    // A JPEG is decoded already scaled down; anything else (and a JPEG
    // the scaled decoder does not take) through the limits above.
    let decoded = match data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        true => scaled_jpeg(data),
        false => None,
    };
    let decoded = match decoded {
        Some(image) => image,
        None => reader.decode()?,
    };
    // A JPEG decoded at a scale that lands on the thumbnail's size needs
    // no resampling.
    let small = match decoded.width().max(decoded.height()) == THUMBNAIL_SIDE {
        true => decoded,
        false => decoded.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE),
    };
    let flat = match small.color().has_alpha() {
        false => small.to_rgb8(),
        true => {
            let small = small.to_rgba8();
            image::RgbImage::from_fn(small.width(), small.height(), |x, y| {
                let [r, g, b, a] = small.get_pixel(x, y).0;
                let over_white = |c: u8| {
                    ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8
                };
                image::Rgb([over_white(r), over_white(g), over_white(b)])
            })
        }
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&flat)?;
    Ok(out)
}

/// A JPEG decoded at the smallest scale (1/8, 1/4, 1/2 or whole) that is
/// still at least a thumbnail's size: the inverse DCT then does most of
/// the downscaling, which otherwise costs as much as the decode. `None`
/// for what this decoder does not take (CMYK, 16-bit grey, a frame that
/// does not match its header): the caller decodes it the slow way.
fn scaled_jpeg(data: &[u8]) -> Option<image::DynamicImage> {
    use jpeg_decoder::{Decoder, PixelFormat};
    let mut decoder = Decoder::new(std::io::Cursor::new(data));
    decoder.set_max_decoding_buffer_size(usize::try_from(DECODE_BYTES).ok()?);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return None;
    }
    let side = |a: u32, b: u32| (u64::from(a) * u64::from(THUMBNAIL_SIDE) / u64::from(b)).max(1);
    let (want_w, want_h) = if w >= h {
        (u64::from(THUMBNAIL_SIDE), side(h, w))
    } else {
        (side(w, h), u64::from(THUMBNAIL_SIDE))
    };
    let (sw, sh) = decoder
        .scale(
            u16::try_from(want_w.min(u64::from(w))).ok()?,
            u16::try_from(want_h.min(u64::from(h))).ok()?,
        )
        .ok()?;
    let pixels = decoder.decode().ok()?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    match decoder.info()?.pixel_format {
        PixelFormat::RGB24 => {
            image::RgbImage::from_raw(sw, sh, pixels).map(image::DynamicImage::ImageRgb8)
        }
        PixelFormat::L8 => {
            image::GrayImage::from_raw(sw, sh, pixels).map(image::DynamicImage::ImageLuma8)
        }
        _ => None,
    }
}

/// A file name as one URL path segment.
pub fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client's file name made safe to keep and show: its last path
/// component, without control characters, at most 200 characters;
/// "file" when nothing is left.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// The allowed type of a file whose first bytes are `head` (all of it when
/// `whole`), judged by content: common images, MP4 and WebM video, PDF,
/// office documents, and plain text; `None` for anything else, executables
/// and HTML (or SVG, which carries scripts) included.
pub fn sniff(head: &[u8], whole: bool) -> Option<&'static str> {
    if head.is_empty() {
        return None;
    }
    if let Some(kind) = infer::get(head) {
        return ALLOWED
            .iter()
            .find(|allowed| **allowed == kind.mime_type())
            .copied();
    }
    plain_text(head, whole).then_some(PLAIN_TEXT)
}

/// Every type [`sniff`] may judge a file to have, so every type a file is
/// served with (a thumbnail is a JPEG, among them).
pub fn served_types() -> impl Iterator<Item = &'static str> {
    ALLOWED.iter().copied().chain([PLAIN_TEXT])
}

const PLAIN_TEXT: &str = "text/plain";

/// The types a file may have besides plain text, judged by its content.
const ALLOWED: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/webm",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/rtf",
];

/// UTF-8 text without NUL bytes that does not look like markup a browser
/// would run (HTML, SVG, XML).
fn plain_text(head: &[u8], whole: bool) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A character cut at the end of the head is fine.
        Err(e) if !whole && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    if text.contains('\0') {
        return false;
    }
    let start = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    ![
        "<!doctype",
        "<html",
        "<?xml",
        "<svg",
        "<script",
        "<head",
        "<body",
        "<iframe",
    ]
    .iter()
    .any(|tag| start.starts_with(tag))
}

#[cfg(unix)]
fn create_private_dir(dir: &str) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 3, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn types_are_judged_by_content() {
        assert_eq!(sniff(PNG, true), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n...", true), Some("application/pdf"));
        assert_eq!(sniff("Hello, wörld\n".as_bytes(), true), Some("text/plain"));
        // Executables, HTML, SVG, binary junk and nothing at all are refused.
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0", true), None);
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff", true), None);
        assert_eq!(
            sniff(b"  <!DOCTYPE html><script>alert(1)</script>", true),
            None
        );
        assert_eq!(
            sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>", true),
            None
        );
        assert_eq!(sniff(b"abc\0def", true), None);
        assert_eq!(sniff(b"\xff\xfe\xfd", true), None);
        assert_eq!(sniff(b"", true), None);
        // A multi-byte character cut at the end of a partial head is text.
        assert_eq!(sniff(&"é".as_bytes()[..1], false), Some("text/plain"));
        assert_eq!(sniff(&"é".as_bytes()[..1], true), None);
    }

    #[test]
    fn names_lose_their_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\photo.png"), "photo.png");
        assert_eq!(clean_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_name("..."), "file");
        assert_eq!(clean_name(".htaccess"), "htaccess");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name(&"x".repeat(500)).len(), 200);
    }

    fn files(max: u64) -> (Files, tempdir::Dir) {
        let dir = tempdir::Dir::new();
        let store = Files::store_at(dir.path()).unwrap();
        (
            Files::new(store, Signer::new(b"secret", 3600), max, 256 * 1024),
            dir,
        )
    }

    /// A directory removed on drop (no dependency for one test helper).
    mod tempdir {
        pub struct Dir(String);
        impl Dir {
            pub fn new() -> Dir {
                Dir(std::env::temp_dir()
                    .join(format!("chatgate-files-{}", uuid::Uuid::new_v4()))
                    .to_string_lossy()
                    .into_owned())
            }
            pub fn path(&self) -> &str {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn chunks(data: &[u8], size: usize) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures_util::stream::iter(
            data.chunks(size)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn an_upload_is_stored_read_back_and_deleted() {
        let (files, _dir) = files(1 << 20);
        let id = Uuid::new_v4();
        let mut data = b"%PDF-1.4\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100_000));
        let got = files.receive(id, chunks(&data, 7_000)).await.unwrap();
        assert_eq!(got.size, data.len() as u64);
        assert_eq!(got.content_type, "application/pdf");
        let mut back = Vec::new();
        let mut stream = Box::pin(files.read(id, Variant::File).await.unwrap());
        while let Some(chunk) = stream.next().await {
            back.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(back, data);
        files.delete(id).await.unwrap();
        assert!(files.read(id, Variant::File).await.is_err());
        files.delete(id).await.unwrap();
    }

    #[tokio::test]
    async fn too_large_or_refused_types_leave_nothing_behind() {
        let (files, _dir) = files(50_000);
        let id = Uuid::new_v4();
        let mut data = b"plain text ".to_vec();
        data.extend(std::iter::repeat_n(b'y', 60_000));
        let err = files.receive(id, chunks(&data, 4_096)).await.unwrap_err();
        assert!(matches!(err, FileError::TooLarge(50_000)), "{err:?}");
        assert!(files.read(id, Variant::File).await.is_err());
        let err = files
            .receive(id, chunks(b"\x7fELF\x02\x01\x01\0\0\0\0\0", 3))
            .await
            .unwrap_err();
        assert!(matches!(err, FileError::TypeNotAllowed), "{err:?}");
        assert!(files.read(id, Variant::File).await.is_err());
        // Exactly the cap is allowed.
        let exact = vec![b'z'; 50_000];
        assert_eq!(
            files.receive(id, chunks(&exact, 9_999)).await.unwrap().size,
            50_000
        );
    }

    #[tokio::test]
    async fn an_image_reports_its_size_and_gets_a_thumbnail() {
        let (files, _dir) = files(1 << 20);
        let img = image::RgbImage::from_fn(700, 350, |x, _| image::Rgb([(x % 256) as u8, 9, 9]));
        let mut data = std::io::Cursor::new(Vec::new());
        img.write_to(&mut data, image::ImageFormat::Png).unwrap();
        let id = Uuid::new_v4();
        let got = files
            .receive(id, chunks(data.get_ref(), 1000))
            .await
            .unwrap();
        assert_eq!((got.width, got.height), (Some(700), Some(350)));
        let mut thumb = Vec::new();
        let mut stream = Box::pin(files.read(id, Variant::Thumbnail).await.unwrap());
        while let Some(chunk) = stream.next().await {
            thumb.extend_from_slice(&chunk.unwrap());
        }
        let small = image::load_from_memory(&thumb).unwrap();
        assert_eq!(
            (small.width(), small.height()),
            (THUMBNAIL_SIDE, THUMBNAIL_SIDE / 2)
        );
        files.delete(id).await.unwrap();
        assert!(files.read(id, Variant::Thumbnail).await.is_err());
    }

    #[test]
    fn jpegs_are_decoded_scaled_down_to_the_same_thumbnails() {
        let jpeg = |w: u32, h: u32, grey: bool| {
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
            });
            let img = match grey {
                false => image::DynamicImage::ImageRgb8(img),
                true => {
                    image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(img).to_luma8())
                }
            };
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            out.into_inner()
        };
        let side = |data: &[u8]| {
            let small = image::load_from_memory(&thumbnail(data).unwrap()).unwrap();
            (small.width(), small.height())
        };
        // Landscape, portrait, grey, smaller than a thumbnail, odd sizes.
        for (w, h, grey, expected) in [
            (1280, 800, false, (320, 200)),
            (600, 1000, false, (192, 320)),
            (1280, 800, true, (320, 200)),
            (200, 100, false, (320, 160)),
            (1001, 333, false, (320, 106)),
        ] {
            let data = jpeg(w, h, grey);
            // The scaled decoder takes it (no fallback), at 1/8..1 scale.
            let scaled = scaled_jpeg(&data).unwrap();
            assert!(
                scaled.width() >= expected.0.min(w) && scaled.width() <= w,
                "{w}x{h}"
            );
            assert!(
                scaled.width() < 2 * expected.0.max(1) || scaled.width() == w,
                "{w}x{h}"
            );
            let got = side(&data);
            assert!(
                got.0.abs_diff(expected.0) <= 1 && got.1.abs_diff(expected.1) <= 1,
                "{w}x{h}: {got:?}"
            );
        }
        // What it does not take falls back to the full decoder.
        assert!(scaled_jpeg(b"\xFF\xD8\xFFnot a jpeg").is_none());
        assert!(thumbnail(b"\xFF\xD8\xFFnot a jpeg").is_err());
    }

    #[test]
    fn a_decode_past_its_limits_is_refused() {
        // A PNG header (with its checksum) that claims more than the
        // decoder may allocate, or a side past the limit.
        let header = |w: u32, h: u32| {
            let mut chunk = b"IHDR".to_vec();
            chunk.extend_from_slice(&w.to_be_bytes());
            chunk.extend_from_slice(&h.to_be_bytes());
            chunk.extend_from_slice(&[8, 6, 0, 0, 0]);
            let mut crc = flate2::Crc::new();
            crc.update(&chunk);
            let mut png = vec![0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc.sum().to_be_bytes());
            // An empty IDAT and IEND: what the decoder reads before it
            // knows the image.
            for name in [b"IDAT", b"IEND"] {
                let mut crc = flate2::Crc::new();
                crc.update(name);
                png.extend_from_slice(&[0, 0, 0, 0]);
                png.extend_from_slice(name);
                png.extend_from_slice(&crc.sum().to_be_bytes());
            }
            png
        };
        let got = thumbnail(&header(9_000, 9_000));
        assert!(matches!(got, Err(image::ImageError::Limits(_))), "{got:?}");
        assert!(matches!(
            thumbnail(&header(20_000, 10)),
            Err(image::ImageError::Limits(_))
        ));
        // The control: a small one passes the limits and fails for its
        // missing data only.
        assert!(
            matches!(thumbnail(&header(30, 20)), Err(e) if !matches!(e, image::ImageError::Limits(_)))
        );
    }

    #[test]
    fn urls_are_signed_and_expire() {
        let files = Signer::new(b"secret", 3600);
        let id = Uuid::new_v4();
        let url = files.url(id, "my photo.png", Variant::File, 1_000, 3600);
        assert!(url.starts_with(&format!(
            "/files/{id}/my%20photo.png?expires=4600&signature="
        )));
        let signature = url.rsplit('=').next().unwrap();
        assert!(files.verify(id, Variant::File, 4600, signature, 1_000));
        assert!(files.verify(id, Variant::File, 4600, signature, 4600));
        // Expired, another expiry, another file, the thumbnail, another key.
        assert!(!files.verify(id, Variant::File, 4600, signature, 4601));
        assert!(!files.verify(id, Variant::File, 9999, signature, 1_000));
        assert!(!files.verify(Uuid::new_v4(), Variant::File, 4600, signature, 1_000));
        assert!(!files.verify(id, Variant::Thumbnail, 4600, signature, 1_000));
        let other = Signer::new(b"other secret", 3600);
        assert!(!other.verify(id, Variant::File, 4600, signature, 1_000));
        assert!(!files.verify(id, Variant::File, 4600, "", 1_000));
    }
}
