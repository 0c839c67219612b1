//! Mail: an email as the outbox sends it, and SMTP through `lettre`.

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One email, both parts composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The outbox row's id: the same on every retry, so a receiver (or the
    /// visitor's mail client) can tell a repeat.
    pub id: uuid::Uuid,
    /// A `List-Unsubscribe` link, when the email has one.
    pub unsubscribe: Option<String>,
}

/// Why an email was not sent (it may not have been: try again later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailError {
    pub text: String,
    /// The server could not be reached or would not serve (a refused or
    /// lost connection, a timeout, `421`): any other email would fail the
    /// same way now.
    pub server_down: bool,
}

impl MailError {
    fn of_email(text: String) -> MailError {
        MailError {
            text,
            server_down: false,
        }
    }
}

/// Sends email.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// SMTP (`CHATGATE_SMTP_URL`).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `url` (`smtp://host:port`) sending as `from`; an error
    /// names what is wrong with either. Within a Tokio runtime: the
    /// transport keeps its pool of SMTP connections on a task.
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, String> {
        let (host, port, credentials) = parse_smtp_url(url)?;
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("bad sender address `{from}`: {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(std::time::Duration::from_secs(30)));
        if let Some((user, password)) = credentials {
            builder = builder.credentials(
                lettre::transport::smtp::authentication::Credentials::new(user, password),
            );
        }
        let transport = builder.build();
        Ok(SmtpMailer { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|e| MailError::of_email(format!("bad recipient: {e}")))?;
        let domain = self.from.email.domain().to_string();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", email.id)));
        if let Some(link) = &email.unsubscribe {
            builder = builder.header(ListUnsubscribe(format!("<{link}>")));
        }
        let message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.html.clone()),
                    ),
            )
            .map_err(|e| MailError::of_email(format!("cannot build the email: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError {
                // No connection (refused, lost, timed out), or 421: the
                // server's state, not this email's.
                server_down: e.status().map(u16::from) == Some(421)
                    || e.is_timeout()
                    || !(e.is_response() || e.is_client() || e.is_transient() || e.is_permanent()),
                text: format!("SMTP: {e}"),
            })
    }
}

/// `smtp://[user[:password]@]host[:port]` (port 25 by default): the host,
/// port and credentials. Plain SMTP only: this build has no TLS for mail,
/// so `smtps://` is refused rather than sent in the clear.
/// A user name and password.
type Credentials = Option<(String, String)>;

fn parse_smtp_url(url: &str) -> Result<(String, u16, Credentials), String> {
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| "the SMTP URL must start with smtp://".to_string())?;
    let rest = rest.split(['/', '?']).next().unwrap_or("");
    let (credentials, host_port) = match rest.rsplit_once('@') {
        Some((cred, hp)) => {
            let (user, password) = cred.split_once(':').unwrap_or((cred, ""));
            (Some((decode(user), decode(password))), hp)
        }
        None => (None, rest),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad SMTP port `{p}`"))?,
        ),
        _ => (host_port, 25),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the SMTP URL has no host".into());
    }
    Ok((host.to_string(), port, credentials))
}

/// Percent-decodes a URL's user or password.
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `List-Unsubscribe` header (RFC 2369).
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Escapes text for HTML (element content and quoted attributes).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape_html, SmtpMailer};

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape_html(r#"<b onclick="x">Tom & 'Jerry'</b>"#),
            "&lt;b onclick=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn smtp_urls_give_host_port_and_credentials() {
        use super::parse_smtp_url;
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:2525").unwrap(),
            ("127.0.0.1".into(), 2525, None)
        );
        assert_eq!(parse_smtp_url("smtp://mail.example").unwrap().1, 25);
        assert_eq!(
            parse_smtp_url("smtp://me:p%40ss@mail.example:587").unwrap(),
            (
                "mail.example".into(),
                587,
                Some(("me".into(), "p@ss".into()))
            )
        );
        assert!(parse_smtp_url("smtps://mail.example").is_err());
        assert!(parse_smtp_url("smtp://:25").is_err());
        assert!(parse_smtp_url("smtp://h:notaport").is_err());
    }

    // A runtime: the transport's connection pool runs on it.
    #[tokio::test]
    async fn a_bad_url_or_sender_is_refused_at_start() {
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "chatgate <chatgate@localhost>").is_ok());
        assert!(SmtpMailer::new("ftp://x", "a@b.c").is_err());
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "not an address").is_err());
    }
}
