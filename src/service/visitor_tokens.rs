//! The visitor API's token rules (visitor-api.md), as `VisitorService`
//! methods: which token is accepted where, what a resume token may resume,
//! who may mint one, and the pair of tokens an authenticate hands out (the
//! page's context carried in the visitor token until the first message).
//! `http::chatplugin` parses the request, calls one of these and renders.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::agents::AgentService;
use super::visitor::VisitorService;
use crate::auth::TokenKind;
use crate::domain::{Channel, ChannelId, ConversationId, Message};
use crate::error::ApiError;

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
    /// The body's fields, whose visitor context (already checked) the
    /// conversation records.
    pub context: Map<String, Value>,
    pub start: VisitorStart,
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
    /// `/chatplugin.authenticate`: starts a conversation or resumes one,
    /// within the client IP's budget (checked before anything else, so a
    /// client past it is refused whatever it sent: `request` is the body as
    /// the door parsed it, or why it could not be). A conversation that has
    /// begun keeps its context up to date; a new one carries it in its token
    /// until its first message, so authenticating alone writes nothing.
    pub async fn authenticate(
        &self,
        ip: IpAddr,
        request: Result<Authenticate, ApiError>,
        origin: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Admitted, ApiError> {
        self.limits.authenticate.check(&ip)?;
        let Authenticate { context, start } = request?;
        let (channel, conversation, messages) = match start {
            VisitorStart::Resume(resume) => self.resume(&resume, origin).await?,
            VisitorStart::New(channel) => {
                let channel = self.connected_channel(channel, origin).await?;
                (channel, ConversationId::new(), Vec::new())
            }
        };
        let mut first_context = None;
        if messages.is_empty() {
            first_context = crate::wire::visitor::context(&context, user_agent)?;
        } else if let Some(context) = crate::wire::visitor::context(&context, user_agent)? {
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
    /// admin's, and `request` (the body's channel and conversation, or why
    /// the body could not be read) names the conversation of the admin's
    /// tenant to mint it for.
    pub async fn resume_token_for(
        &self,
        agents: &AgentService,
        token: Option<&str>,
        origin: Option<&str>,
        request: Result<(ChannelId, ConversationId), ApiError>,
    ) -> Result<String, ApiError> {
        let token = token.ok_or_else(ApiError::invalid_token)?;
        if let Some(claims) = self.tokens.verify_visitor(token, TokenKind::Visitor) {
            let channel = self.connected_channel(claims.ch, origin).await?;
            return Ok(self.resume_token(channel.id, claims.cv));
        }
        let admin = agents.admin(Some(token)).await?;
        let (channel, conversation) = request?;
        Ok(self.mint_resume(&admin, channel, conversation).await?)
    }
}
