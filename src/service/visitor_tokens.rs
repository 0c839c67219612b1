//! The visitor API's token rules (visitor-api.md), as `VisitorService`
//! methods: which token is accepted where, what a resume token may resume,
//! who may mint one, and the pair of tokens an authenticate hands out (the
//! page's context carried in the visitor token until the first message).
//! `http::chatplugin` parses the request, calls one of these and renders.

use std::net::IpAddr;
use std::sync::Arc;

use super::agents::AgentService;
use super::error::ServiceError;
use super::visitor::VisitorService;
use super::Caller;
use crate::auth::TokenKind;
use crate::domain::{Channel, ChannelId, ConversationId, Message, VisitorContext};

/// How an authenticate asks to begin.
#[derive(Debug)]
pub enum VisitorStart {
    /// A new conversation on this channel.
    New(ChannelId),
    /// The conversation of this resume token (not verified yet).
    Resume(String),
}

/// `/chatplugin.authenticate`, parsed.
pub struct Authenticate {
    /// What the page said about the visitor (with the browser's
    /// `User-Agent`), which the conversation records; `None`: nothing.
    pub context: Option<VisitorContext>,
    pub start: VisitorStart,
}

/// Who asks for a resume token (`/chatplugin.resumeToken`).
pub enum ResumeMinter {
    /// A visitor, for its own conversation: the token is minted already.
    Visitor(String),
    /// An admin, who names the conversation in the body (`mint_resume`).
    Admin(Caller),
}

/// What an authenticate hands the visitor.
pub struct Admitted {
    pub channel: Arc<Channel>,
    pub conversation: ConversationId,
    /// The conversation so far, oldest first (empty for a new one).
    pub messages: Vec<Message>,
    /// For `/chatplugin.send` and the STOMP socket.
    pub token: String,
    /// For a later authenticate that resumes this conversation.
    pub resume_token: String,
}

impl VisitorService {
    /// `/chatplugin.authenticate`'s budget per client IP, checked before
    /// anything else: a client past it is refused whatever it sent.
    pub fn admit(&self, ip: IpAddr) -> Result<(), ServiceError> {
        Ok(self.limits.authenticate.check(&ip)?)
    }

    /// `/chatplugin.authenticate` (after `admit`): starts a conversation or
    /// resumes one. A conversation that has begun keeps its context up to
    /// date; a new one carries it in its token until its first message, so
    /// authenticating alone writes nothing.
    pub async fn authenticate(
        &self,
        request: Authenticate,
        origin: Option<&str>,
    ) -> Result<Admitted, ServiceError> {
        let Authenticate { context, start } = request;
        let (channel, conversation, messages) = match start {
            VisitorStart::Resume(resume) => self.resume(&resume, origin).await?,
            VisitorStart::New(channel) => {
                let channel = self.connected_channel(channel, origin).await?;
                (channel, ConversationId::new(), Vec::new())
            }
        };
        let mut first_context = None;
        if messages.is_empty() {
            first_context = context;
        } else if let Some(context) = context {
            self.save_context(channel.tenant_id, conversation, context)
                .await?;
        }
        let token = self.tokens.visitor_with_context(
            TokenKind::Visitor,
            channel.id,
            conversation,
            self.visitor_token_ttl,
            first_context,
        );
        let resume_token = self.resume_token(channel.id, conversation);
        Ok(Admitted {
            channel,
            conversation,
            messages,
            token,
            resume_token,
        })
    }

    /// `/chatplugin.resumeToken`: with a visitor token, a resume token for
    /// its own conversation (its channel still connected and open to
    /// `origin`; the body is not read); otherwise the token must be an
    /// admin's, who then names the conversation of its tenant to mint it
    /// for (`mint_resume`).
    pub async fn resume_minter(
        &self,
        agents: &AgentService,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<ResumeMinter, ServiceError> {
        let token = token.ok_or(ServiceError::InvalidToken)?;
        if let Some(claims) = self.tokens.verify_visitor(token, TokenKind::Visitor) {
            let channel = self.connected_channel(claims.ch, origin).await?;
            return Ok(ResumeMinter::Visitor(
                self.resume_token(channel.id, claims.cv),
            ));
        }
        Ok(ResumeMinter::Admin(agents.admin(Some(token)).await?))
    }
}
