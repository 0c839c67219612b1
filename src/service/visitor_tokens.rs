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
use crate::auth::{TokenKind, VisitorOwner};
use crate::domain::identity::{ClaimedIdentity, VisitorKey};
use crate::domain::{Channel, ChannelId, ConversationId, Message, VisitorContext};
use crate::store::ConversationLookup;

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
    /// `channel_id` when given beside a resume token (an identity's
    /// channel, when the resume token is not taken).
    pub channel: Option<ChannelId>,
    /// The identity the site signed, if any (not verified yet).
    pub identity: Option<ClaimedIdentity>,
    /// Start a new conversation of the same visitor rather than resume.
    pub new_conversation: bool,
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
    /// The visitor's identity was verified.
    pub verified: bool,
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
        let Authenticate {
            context,
            start,
            channel: named_channel,
            identity,
            new_conversation,
        } = request;
        let (channel, mut conversation, mut messages, owner) = match identity {
            Some(identity) => {
                self.identified(&identity, &start, named_channel, new_conversation, origin)
                    .await?
            }
            None => {
                let (channel, conversation, messages, owner) = match start {
                    VisitorStart::Resume(resume) => {
                        let (channel, conversation, messages, claimed) =
                            self.resume(&resume, origin).await?;
                        let owner = self.owner_of(&channel, conversation, claimed).await?;
                        (channel, conversation, messages, owner)
                    }
                    VisitorStart::New(channel) => {
                        let channel = self.connected_channel(channel, origin).await?;
                        let conversation = ConversationId::new();
                        let owner = VisitorOwner {
                            key: VisitorKey::anonymous(conversation),
                            verified: false,
                        };
                        (channel, conversation, Vec::new(), owner)
                    }
                };
                self.refuse_blocked(channel.id, &owner.key).await?;
                (channel, conversation, messages, owner)
            }
        };
        if new_conversation {
            // The same visitor (identity or chain), a conversation of its own.
            conversation = ConversationId::new();
            messages = Vec::new();
        }
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
            Some(owner.clone()),
        );
        let verified = owner.verified;
        let resume_token = self.resume_token_for(channel.id, conversation, Some(owner));
        Ok(Admitted {
            channel,
            conversation,
            messages,
            token,
            resume_token,
            verified,
        })
    }

    /// An authenticate with an identity: verified by the channel's secret
    /// (401 otherwise), not blocked (403), then the conversation of the
    /// resume token if it is this identity's, else the identity's newest
    /// (or a new one). A resume token of anyone else is ignored: the
    /// identity wins, and nothing of the other conversation is told.
    async fn identified(
        &self,
        identity: &ClaimedIdentity,
        start: &VisitorStart,
        named_channel: Option<ChannelId>,
        new_conversation: bool,
        origin: Option<&str>,
    ) -> Result<(Arc<Channel>, ConversationId, Vec<Message>, VisitorOwner), ServiceError> {
        let resumed = match start {
            VisitorStart::Resume(token) => self.tokens.verify_visitor(token, TokenKind::Resume),
            VisitorStart::New(_) => None,
        };
        let channel_id = match (start, named_channel, &resumed) {
            (VisitorStart::New(channel), _, _) => *channel,
            (_, Some(channel), _) => channel,
            (_, None, Some(claims)) => claims.ch,
            (_, None, None) => return Err(ServiceError::InvalidToken),
        };
        let channel = self.connected_channel(channel_id, origin).await?;
        let owner = self.verify_identity(&channel, identity).await?;
        self.refuse_blocked(channel.id, &owner.key).await?;
        let mut chosen = None;
        if let Some(claims) = resumed.filter(|c| c.ch == channel.id) {
            let claimed = VisitorOwner {
                key: claims.visitor_key(),
                verified: claims.vf,
            };
            if self.owner_of(&channel, claims.cv, claimed).await?.key == owner.key {
                chosen = Some(claims.cv);
            }
        }
        if chosen.is_none() && !new_conversation {
            chosen = self.current_conversation(&channel, &owner.key).await?;
        }
        let conversation = chosen.unwrap_or_else(ConversationId::new);
        let messages = match self.conversation(channel.scope(), conversation).await? {
            ConversationLookup::Found(_) => self.history(channel.scope(), conversation).await?,
            ConversationLookup::Free => Vec::new(),
            // Not reachable by this identity's own ids; refused like a forgery.
            ConversationLookup::Elsewhere => return Err(ServiceError::InvalidToken),
        };
        Ok((channel, conversation, messages, owner))
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
            self.refuse_erased(&claims).await?;
            let owner = VisitorOwner {
                key: claims.visitor_key(),
                verified: claims.vf,
            };
            return Ok(ResumeMinter::Visitor(self.resume_token_for(
                channel.id,
                claims.cv,
                Some(owner),
            )));
        }
        Ok(ResumeMinter::Admin(agents.admin(Some(token)).await?))
    }
}
