//! Email to visitors (issue 18, "No visitor lost"): the offline fallback
//! and the transcript on request, sent through the outbox (`crate::outbox`).
//!
//! - **Offline fallback.** An agent's reply in a visitor room of a channel
//!   with `email_fallback` adds (or joins) the conversation's pending row
//!   `offline:<conversation>`, due `email_offline_delay_ms` later, in the
//!   reply's own transaction (its group commit: no write of its own; what
//!   the email says is computed when it is due). When due, the row sends one email with every agent reply
//!   after the last email that no live visitor socket received (still
//!   PENDING) once the oldest of them has waited the delay, unless the
//!   visitor is connected, gave no email, unsubscribed, or was emailed less
//!   than `email_throttle_ms` ago (then it waits until then): at most one
//!   email per conversation per throttle, never one per message.
//! - **Transcript.** `request_transcript` records the request and its outbox
//!   row in one transaction (one per conversation per
//!   `transcript_interval_ms`, and a budget per client IP).
//!
//! The messages come from the visitor's own reads (`MessageStore::history`
//! and `messages_after` of the visitor's scope), so what the visitor may not
//! see is never emailed either. Links are signed (HMAC of a key derived from
//! the server's secret): one reopens the conversation in the widget on the
//! page the visitor chatted from (for as long as a resume token lives), one
//! stops the offline emails.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::error::{Conflict, Missing, ServiceError};
use super::Parts;
use crate::auth::{TokenKind, Tokens};
use crate::domain::time::now_ms;
use crate::domain::{Channel, ChannelId, ConversationId, Message, SenderKind, TenantId};
use crate::outbox::mail::{escape_html, Email, MailError, Mailer};
use crate::outbox::{Delivery, Handler, Worker};
use crate::presence::{Presence, PresenceKey};
use crate::store::{Emailed, NewOutbox, OutboxRow, RepliesAfter, Store, TranscriptRequested};

/// The outbox kind of every email.
pub const KIND: &str = "email";

/// An email row's payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EmailJob {
    /// The replies an offline visitor missed.
    Offline {
        tenant: TenantId,
        channel: ChannelId,
        conversation: ConversationId,
    },
    /// The whole conversation, asked for by its visitor.
    Transcript {
        tenant: TenantId,
        channel: ChannelId,
        conversation: ConversationId,
    },
}

/// What a signed link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Open,
    Unsubscribe,
}

impl LinkPurpose {
    fn tag(self) -> &'static str {
        match self {
            LinkPurpose::Open => "open",
            LinkPurpose::Unsubscribe => "unsubscribe",
        }
    }
}

/// A link's parameters, as the email carries them.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkParams {
    pub t: TenantId,
    pub ch: ChannelId,
    pub c: ConversationId,
    /// Until when (Unix seconds) a reopen link works (as long as a resume
    /// token); unsubscribe links always work (0).
    #[serde(default)]
    pub e: i64,
    pub s: String,
}

/// An offline email's conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OfflineJob {
    tenant: TenantId,
    channel: ChannelId,
    conversation: ConversationId,
}

/// What became of an offline email once its facts were read.
#[derive(Debug)]
enum Verdict {
    /// Nothing to send (yet): this is the row's outcome.
    Done(Delivery),
    /// These replies go to `to`.
    Send {
        to: String,
        channel: Arc<Channel>,
        missed: Vec<Message>,
    },
}

impl Verdict {
    fn failed(err: &impl std::fmt::Display) -> Verdict {
        Verdict::Done(Delivery::Failed(err.to_string()))
    }
}

/// Where a reopen link leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reopen {
    /// The page the visitor chatted from, with the resume token in its fragment.
    Page(String),
    /// No page is known: the resume token alone.
    NoPage,
}

pub struct EmailService {
    store: Arc<dyn Store>,
    presence: Arc<Presence>,
    mailer: Option<Arc<dyn Mailer>>,
    tokens: Arc<Tokens>,
    limits: Arc<crate::limits::Limits>,
    link_key: Vec<u8>,
    public_url: String,
    offline_delay_ms: i64,
    throttle_ms: i64,
    transcript_interval_ms: i64,
    resume_ttl: u64,
    max_history: u32,
    /// The reply path reads the channel from here (a second's cache).
    channels: Arc<crate::cache::ChannelCache>,
    /// Woken when a row due now is added (set once the worker exists).
    worker: OnceLock<Weak<Worker>>,
    /// Until when (Unix ms) no email is tried: the SMTP server was found
    /// down, so a round's other rows wait untried (no reads, no
    /// connection, no attempt counted) instead of each failing in turn.
    paused_until: AtomicI64,
    /// How long a pause lasts (`CHATGATE_OUTBOX_RETRY_MS`).
    pause_ms: i64,
    /// The current round's offline emails, decided together (`prepare`),
    /// each taken by its row.
    prepared: std::sync::Mutex<HashMap<ConversationId, Verdict>>,
}

impl EmailService {
    pub fn new(
        parts: &Parts,
        mailer: Option<Arc<dyn Mailer>>,
        channels: Arc<crate::cache::ChannelCache>,
    ) -> EmailService {
        let config = &parts.config;
        let mut mac = Hmac::<Sha256>::new_from_slice(&parts.link_secret).expect("any key");
        mac.update(b"chatgate email links v1");
        EmailService {
            store: parts.store.clone(),
            presence: parts.presence.clone(),
            mailer,
            tokens: parts.tokens.clone(),
            limits: parts.limits.clone(),
            link_key: mac.finalize().into_bytes().to_vec(),
            public_url: parts.public_url.trim_end_matches('/').to_string(),
            offline_delay_ms: config.email_offline_delay_ms as i64,
            throttle_ms: config.email_throttle_ms as i64,
            transcript_interval_ms: config.transcript_interval_ms as i64,
            resume_ttl: config.resume_token_ttl,
            max_history: config.max_history,
            channels,
            worker: OnceLock::new(),
            paused_until: AtomicI64::new(0),
            pause_ms: config.outbox_retry_ms as i64,
            prepared: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn attach_worker(&self, worker: &Arc<Worker>) {
        let _ = self.worker.set(Arc::downgrade(worker));
    }

    /// Whether this server sends email at all.
    pub fn enabled(&self) -> bool {
        self.mailer.is_some()
    }

    /// Whether the widget of `channel` asks for an email.
    pub fn offered(&self, channel: &Channel) -> bool {
        self.enabled() && channel.look.email_fallback
    }

    /// The outbox row an agent's reply in a visitor room of `channel`
    /// carries when the channel has the email fallback: the conversation's
    /// offline email, due after the delay (a pending one stands for this
    /// reply too). The reply's own group commit stores it, so scheduling
    /// costs the chat no write of its own; whether anything is sent (the
    /// visitor's address, presence, what is still unread) is decided when
    /// it is due. `None` without SMTP, the fallback, or the channel (a
    /// failure to read it is logged: the reply is stored regardless).
    pub async fn offline_row(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        conversation: ConversationId,
    ) -> Option<NewOutbox> {
        if !self.enabled() {
            return None;
        }
        match self.channels.get(self.store.as_ref(), channel).await {
            Ok(Some(c)) if c.look.email_fallback && c.tenant_id == tenant => {}
            Ok(_) => return None,
            Err(err) => {
                tracing::warn!(%err, %conversation, "cannot read the channel; no offline email scheduled");
                return None;
            }
        }
        let job = EmailJob::Offline {
            tenant,
            channel,
            conversation,
        };
        Some(self.row(
            &job,
            Some(format!("offline:{conversation}")),
            now_ms() + self.offline_delay_ms,
        ))
    }

    fn row(&self, job: &EmailJob, key: Option<String>, due_at_ms: i64) -> NewOutbox {
        let (EmailJob::Offline { tenant, .. } | EmailJob::Transcript { tenant, .. }) = job;
        NewOutbox {
            id: Uuid::new_v4(),
            kind: KIND.into(),
            tenant_id: *tenant,
            dedupe_key: key,
            payload: serde_json::to_string(job).unwrap_or_default(),
            created_at_ms: now_ms(),
            due_at_ms,
            order_key: None,
            target: None,
        }
    }

    /// The visitor of `conversation` asks for its transcript by email
    /// (409 `no-email` without an address, 429 when asked within the
    /// interval or past the client IP's budget).
    pub async fn request_transcript(
        &self,
        channel: &Channel,
        conversation: ConversationId,
        ip: IpAddr,
    ) -> Result<(), ServiceError> {
        if !self.enabled() {
            return Err(ServiceError::Conflict(Conflict::EmailUnavailable));
        }
        let lookup = self
            .store
            .conversation(channel.scope(), conversation)
            .await?;
        if lookup.found().is_none() {
            return Err(ServiceError::NotFound(Missing::Conversation));
        }
        self.limits.transcript.check(&ip)?;
        let now = now_ms();
        let job = EmailJob::Transcript {
            tenant: channel.tenant_id,
            channel: channel.id,
            conversation,
        };
        let row = self.row(&job, None, now);
        match self
            .store
            .request_transcript(
                channel.tenant_id,
                conversation,
                now,
                self.transcript_interval_ms,
                &row,
            )
            .await?
        {
            TranscriptRequested::Queued => {
                if let Some(worker) = self.worker.get().and_then(Weak::upgrade) {
                    worker.wake();
                }
                Ok(())
            }
            TranscriptRequested::NoEmail => Err(ServiceError::Conflict(Conflict::NoEmail)),
            TranscriptRequested::TooSoon => {
                let state = self
                    .store
                    .visitor_email(channel.tenant_id, conversation)
                    .await?;
                let at = state.and_then(|s| s.transcript_at_ms).unwrap_or(now);
                let wait = (at + self.transcript_interval_ms - now).max(1000);
                Err(ServiceError::RateLimited {
                    retry_after: std::time::Duration::from_millis(wait as u64),
                })
            }
        }
    }

    fn signature(
        &self,
        purpose: LinkPurpose,
        t: TenantId,
        ch: ChannelId,
        c: ConversationId,
        e: i64,
    ) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.link_key).expect("any key");
        mac.update(format!("{}:{t}:{ch}:{c}:{e}", purpose.tag()).as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The signed link of `purpose` for a conversation.
    pub fn link(
        &self,
        purpose: LinkPurpose,
        t: TenantId,
        ch: ChannelId,
        c: ConversationId,
    ) -> String {
        let e = match purpose {
            LinkPurpose::Open => now_ms() / 1000 + self.resume_ttl as i64,
            LinkPurpose::Unsubscribe => 0,
        };
        let s = self.signature(purpose, t, ch, c, e);
        format!(
            "{}/email/{}?t={t}&ch={ch}&c={c}&e={e}&s={s}",
            self.public_url,
            purpose.tag()
        )
    }

    fn verify(&self, purpose: LinkPurpose, p: &LinkParams) -> Result<(), ServiceError> {
        if p.e != 0 && p.e < now_ms() / 1000 {
            return Err(ServiceError::InvalidToken);
        }
        let expected = self.signature(purpose, p.t, p.ch, p.c, p.e);
        let same = expected.len() == p.s.len()
            && expected
                .bytes()
                .zip(p.s.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(ServiceError::InvalidToken)
        }
    }

    /// A reopen link: a fresh resume token for its conversation, and the
    /// page to open it on.
    pub async fn reopen(&self, p: &LinkParams) -> Result<(String, Reopen), ServiceError> {
        self.verify(LinkPurpose::Open, p)?;
        let token = self
            .tokens
            .visitor(TokenKind::Resume, p.ch, p.c, self.resume_ttl);
        let page = self
            .store
            .visitor_email(p.t, p.c)
            .await?
            .and_then(|s| s.url)
            .filter(|u| crate::domain::url::is_web_url(u));
        Ok(match page {
            Some(url) => {
                let base = url.split('#').next().unwrap_or(&url).to_string();
                let link = format!("{base}#chatgate-resume={token}");
                (token, Reopen::Page(link))
            }
            None => (token, Reopen::NoPage),
        })
    }

    /// An unsubscribe link: the conversation's offline emails stop.
    pub async fn unsubscribe(&self, p: &LinkParams) -> Result<(), ServiceError> {
        self.verify(LinkPurpose::Unsubscribe, p)?;
        if self.store.unsubscribe_email(p.t, p.c).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(Missing::Conversation))
        }
    }

    /// An offline email's row: what was gathered for it with its round
    /// (`prepare`), or, for a row on its own, gathered now.
    async fn offline(&self, job: OfflineJob, id: Uuid) -> Delivery {
        let Some(mailer) = &self.mailer else {
            return Delivery::Sent(None);
        };
        let prepared = self
            .prepared
            .lock()
            .expect("not poisoned")
            .remove(&job.conversation);
        let verdict = match prepared {
            Some(verdict) => verdict,
            None => match self.gather(&[job]).await.remove(&job.conversation) {
                Some(verdict) => verdict,
                None => return Delivery::Sent(None),
            },
        };
        let (to, channel, missed) = match verdict {
            Verdict::Done(delivery) => return delivery,
            Verdict::Send {
                to,
                channel,
                missed,
            } => (to, channel, missed),
        };
        let last_seq = missed.iter().map(|m| m.seq).max().unwrap_or(0);
        let (t, c) = (job.tenant, job.conversation);
        let email = self.compose(&channel, &to, t, c, id, &missed, false);
        match mailer.send(&email).await {
            Ok(()) => Delivery::Sent(Some(Emailed {
                tenant: t,
                conversation: c,
                seq: last_seq,
                at_ms: now_ms(),
            })),
            Err(err) => self.failed(err),
        }
    }

    /// Decides the offline emails of `jobs` together: one read of their
    /// visitors' email states, one presence look-up and one read of their
    /// pending replies, however many there are (a round's worth would
    /// otherwise be three round trips an email, all landing at once).
    async fn gather(&self, jobs: &[OfflineJob]) -> HashMap<ConversationId, Verdict> {
        let now = now_ms();
        let mut verdicts = HashMap::with_capacity(jobs.len());
        let keys: Vec<(TenantId, ConversationId)> =
            jobs.iter().map(|j| (j.tenant, j.conversation)).collect();
        let mut states = match self.store.visitor_emails(&keys).await {
            Ok(states) => states,
            Err(err) => {
                for job in jobs {
                    verdicts.insert(job.conversation, Verdict::failed(&err));
                }
                return verdicts;
            }
        };
        // Who has an address, wants email, and may be emailed now.
        let mut candidates = Vec::new();
        for job in jobs {
            let c = job.conversation;
            let Some(state) = states.remove(&c) else {
                verdicts.insert(c, Verdict::Done(Delivery::Sent(None)));
                continue;
            };
            let Some(to) = state.email.clone().filter(|_| !state.unsubscribed) else {
                verdicts.insert(c, Verdict::Done(Delivery::Sent(None)));
                continue;
            };
            let channel = match self.channels.get(self.store.as_ref(), job.channel).await {
                Ok(Some(channel))
                    if channel.look.email_fallback && channel.tenant_id == job.tenant =>
                {
                    channel
                }
                Ok(_) => {
                    verdicts.insert(c, Verdict::Done(Delivery::Sent(None)));
                    continue;
                }
                Err(err) => {
                    verdicts.insert(c, Verdict::failed(&err));
                    continue;
                }
            };
            if let Some(at) = state.emailed_at_ms {
                if at + self.throttle_ms > now {
                    verdicts.insert(c, Verdict::Done(Delivery::Later(at + self.throttle_ms)));
                    continue;
                }
            }
            candidates.push((job, to, channel, state.emailed_seq));
        }
        // Connected visitors get the replies on their sockets.
        let presence: Vec<PresenceKey> = candidates
            .iter()
            .map(|(job, ..)| PresenceKey::Conversation(job.conversation))
            .collect();
        let online = self.presence.online(&presence).await;
        let mut offline = Vec::with_capacity(candidates.len());
        for (i, candidate) in candidates.into_iter().enumerate() {
            if online.get(i) == Some(&true) {
                verdicts.insert(
                    candidate.0.conversation,
                    Verdict::Done(Delivery::Sent(None)),
                );
            } else {
                offline.push(candidate);
            }
        }
        let wanted: Vec<RepliesAfter> = offline
            .iter()
            .map(|(job, _, channel, emailed_seq)| RepliesAfter {
                scope: channel.scope(),
                conversation: job.conversation,
                after_seq: *emailed_seq,
            })
            .collect();
        let mut replies = match self.store.pending_replies(&wanted, self.max_history).await {
            Ok(replies) => replies,
            Err(err) => {
                for (job, ..) in offline {
                    verdicts.insert(job.conversation, Verdict::failed(&err));
                }
                return verdicts;
            }
        };
        for (job, to, channel, _) in offline {
            let missed = replies.remove(&job.conversation).unwrap_or_default();
            let verdict = match missed.iter().map(|m| m.sent_at_ms).min() {
                None => Verdict::Done(Delivery::Sent(None)),
                Some(oldest) if oldest + self.offline_delay_ms > now => {
                    Verdict::Done(Delivery::Later(oldest + self.offline_delay_ms))
                }
                Some(_) => Verdict::Send {
                    to,
                    channel,
                    missed,
                },
            };
            verdicts.insert(job.conversation, verdict);
        }
        verdicts
    }

    /// A failed send; when the server is down, every email waits a pause
    /// (the row that found it down counts an attempt and backs off).
    fn failed(&self, err: MailError) -> Delivery {
        if err.server_down {
            self.paused_until
                .fetch_max(now_ms() + self.pause_ms, Ordering::Relaxed);
        }
        Delivery::Failed(err.text)
    }

    async fn transcript(
        &self,
        t: TenantId,
        ch: ChannelId,
        c: ConversationId,
        id: Uuid,
    ) -> Delivery {
        let Some(mailer) = &self.mailer else {
            return Delivery::Dropped("no SMTP".into());
        };
        let to = match self.store.visitor_email(t, c).await {
            Ok(Some(state)) => state.email,
            Ok(None) => None,
            Err(err) => return Delivery::Failed(err.to_string()),
        };
        let Some(to) = to else {
            return Delivery::Dropped("no email address".into());
        };
        let channel = match self.store.public_channel(ch).await {
            Ok(Some(channel)) if channel.tenant_id == t => channel,
            Ok(_) => return Delivery::Dropped("no such channel".into()),
            Err(err) => return Delivery::Failed(err.to_string()),
        };
        let messages = match self
            .store
            .history(channel.scope(), c, self.max_history)
            .await
        {
            Ok(messages) => messages,
            Err(err) => return Delivery::Failed(err.to_string()),
        };
        let messages: Vec<Message> = messages
            .into_iter()
            .filter(|m| !(m.deleted || m.content.is_empty() && m.attachments.is_empty()))
            .collect();
        let email = self.compose(&channel, &to, t, c, id, &messages, true);
        match mailer.send(&email).await {
            Ok(()) => Delivery::Sent(None),
            Err(err) => self.failed(err),
        }
    }

    /// The email of `messages`: plain text and HTML (every text escaped),
    /// in the channel's name and colour, with the reopen and unsubscribe links.
    #[allow(clippy::too_many_arguments)]
    fn compose(
        &self,
        channel: &Channel,
        to: &str,
        t: TenantId,
        c: ConversationId,
        id: Uuid,
        messages: &[Message],
        transcript: bool,
    ) -> Email {
        let open = self.link(LinkPurpose::Open, t, channel.id, c);
        let unsubscribe = self.link(LinkPurpose::Unsubscribe, t, channel.id, c);
        let name = channel.name.as_str();
        let color = channel.look.color.as_deref().unwrap_or("#1f6feb");
        let subject = if transcript {
            format!("Your conversation with {name}")
        } else {
            format!("New reply from {name}")
        };
        let intro = if transcript {
            "Here is your conversation."
        } else {
            "You have a reply while you were away."
        };
        let who = |m: &Message| match m.sender_kind {
            SenderKind::Visitor => "You".to_string(),
            SenderKind::System => name.to_string(),
            _ => m.sender_name.clone().unwrap_or_else(|| name.to_string()),
        };
        let body = |m: &Message| {
            let mut text = m.content.clone();
            for file in &m.attachments {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("[file: {}]", file.name));
            }
            text
        };
        let mut text = format!("{name}\n\n{intro}\n\n");
        let mut items = String::new();
        for m in messages {
            text.push_str(&format!("{}:\n{}\n\n", who(m), body(m)));
            items.push_str(&format!(
                "<p style=\"margin:0 0 12px\"><strong>{}</strong><br>{}</p>",
                escape_html(&who(m)),
                escape_html(&body(m)).replace('\n', "<br>")
            ));
        }
        text.push_str(&format!("Continue the conversation: {open}\n"));
        if !transcript {
            text.push_str(&format!("Stop these emails: {unsubscribe}\n"));
        }
        let (name_h, color_h) = (escape_html(name), escape_html(color));
        let footer = if transcript {
            String::new()
        } else {
            format!(
                "<p style=\"font-size:12px;color:#666\"><a href=\"{}\">Stop these emails</a></p>",
                escape_html(&unsubscribe)
            )
        };
        let html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif;margin:0\">\
             <div style=\"background:{color_h};color:#fff;padding:12px 16px;font-weight:bold\">{name_h}</div>\
             <div style=\"padding:16px\"><p>{}</p>{items}\
             <p><a href=\"{}\" style=\"background:{color_h};color:#fff;padding:8px 14px;\
             border-radius:4px;text-decoration:none\">Continue the conversation</a></p>{footer}</div>\
             </body></html>",
            escape_html(intro),
            escape_html(&open),
        );
        Email {
            to: to.to_string(),
            subject,
            text,
            html,
            id,
            unsubscribe: (!transcript).then_some(unsubscribe),
        }
    }
}

#[async_trait]
impl Handler for EmailService {
    async fn deliver(&self, row: &OutboxRow) -> Delivery {
        let paused_until = self.paused_until.load(Ordering::Relaxed);
        if paused_until > now_ms() {
            return Delivery::Later(paused_until);
        }
        let job: EmailJob = match serde_json::from_str(&row.payload) {
            Ok(job) => job,
            Err(err) => return Delivery::Dropped(format!("bad payload: {err}")),
        };
        match job {
            EmailJob::Offline {
                tenant,
                channel,
                conversation,
            } => {
                let job = OfflineJob {
                    tenant,
                    channel,
                    conversation,
                };
                self.offline(job, row.id).await
            }
            EmailJob::Transcript {
                tenant,
                channel,
                conversation,
            } => self.transcript(tenant, channel, conversation, row.id).await,
        }
    }

    fn again_at(&self, now_ms: i64) -> i64 {
        now_ms + self.offline_delay_ms
    }

    /// Gathers the round's offline emails in three reads (`gather`); each
    /// row's `deliver` then takes its verdict.
    async fn prepare(&self, rows: &[&OutboxRow]) {
        let mut prepared = HashMap::new();
        if self.mailer.is_some() && self.paused_until.load(Ordering::Relaxed) <= now_ms() {
            let jobs: Vec<OfflineJob> = rows
                .iter()
                .filter_map(|row| match serde_json::from_str(&row.payload) {
                    Ok(EmailJob::Offline {
                        tenant,
                        channel,
                        conversation,
                    }) => Some(OfflineJob {
                        tenant,
                        channel,
                        conversation,
                    }),
                    _ => None,
                })
                .collect();
            if !jobs.is_empty() {
                prepared = self.gather(&jobs).await;
            }
        }
        // Whatever the last round left (a row given back untried) goes.
        *self.prepared.lock().expect("not poisoned") = prepared;
    }
}
