//! Canned responses: admins of a tenant write them, every agent of the
//! tenant lists, searches and uses them (desk-api.md, "Support desk").

use std::sync::Arc;

use super::error::{Conflict, Missing, ServiceError};
use super::{Caller, Parts};
use crate::domain::canned::{parse_content, parse_shortcut, parse_title, CannedFieldError};
use crate::domain::time::now_ms;
use crate::domain::{search, CannedResponse, CannedResponseId, ChannelId};
use crate::store::{CannedResponseStore, CannedSaved, ChannelStore, Page};

/// The most canned responses one list answers.
pub const MAX_LIMIT: u32 = 1000;
/// A list's size when the caller names none.
pub const DEFAULT_LIMIT: u32 = 100;

/// A canned response's fields as sent; `None` keeps the value (a creation
/// needs all three).
#[derive(Debug, Default, Clone)]
pub struct CannedFields {
    pub shortcut: Option<String>,
    pub title: Option<String>,
    pub content: Option<String>,
}

/// Which canned responses a list shows.
#[derive(Debug, Default, Clone)]
pub struct CannedQuery {
    /// Matches shortcut and title, case and accents aside.
    pub search: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl From<CannedFieldError> for ServiceError {
    fn from(e: CannedFieldError) -> Self {
        ServiceError::field(e.field, e.message)
    }
}

pub struct CannedService {
    store: Arc<dyn CannedResponseStore>,
    channels: Arc<dyn ChannelStore>,
    max_text_chars: usize,
    max_search_chars: usize,
}

impl CannedService {
    pub fn new(parts: &Parts) -> CannedService {
        CannedService {
            store: parts.store.clone(),
            channels: parts.store.clone(),
            max_text_chars: parts.config.max_text_chars,
            max_search_chars: parts.config.max_search_chars,
        }
    }

    /// The tenant's canned responses (any agent): with a search, those
    /// whose shortcut starts with it first.
    pub async fn list(
        &self,
        caller: &Caller,
        query: CannedQuery,
    ) -> Result<Page<CannedResponse>, ServiceError> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ServiceError::field(
                "limit",
                format!("limit must be 1 to {MAX_LIMIT}"),
            ));
        }
        let text = query.search.as_deref().unwrap_or("");
        search::check_query(text, self.max_search_chars)
            .map_err(|m| ServiceError::field("search", m))?;
        let pattern = search::like_pattern(text);
        let prefix = search::prefix_pattern(text);
        Ok(self
            .store
            .canned_responses(
                caller.tenant(),
                pattern.as_deref(),
                prefix.as_deref(),
                limit,
                query.offset.unwrap_or(0),
            )
            .await?)
    }

    /// One of the tenant's (any agent), or 404.
    pub async fn get(
        &self,
        caller: &Caller,
        id: CannedResponseId,
    ) -> Result<CannedResponse, ServiceError> {
        self.store
            .canned_response(caller.tenant(), id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::CannedResponse))
    }

    /// A new canned response (admins).
    pub async fn create(
        &self,
        caller: &Caller,
        fields: CannedFields,
    ) -> Result<CannedResponse, ServiceError> {
        caller.require_admin()?;
        let required = |v: Option<String>, name: &'static str| {
            v.ok_or_else(|| ServiceError::field(name, format!("{name} is required")))
        };
        let shortcut = parse_shortcut(&required(fields.shortcut, "shortcut")?)?;
        let title = parse_title(&required(fields.title, "title")?)?;
        let content = parse_content(&required(fields.content, "content")?, self.max_text_chars)?;
        let now = now_ms();
        let canned = CannedResponse {
            id: CannedResponseId::new(),
            tenant_id: caller.tenant(),
            shortcut,
            title,
            content,
            created_at_ms: now,
            updated_at_ms: now,
        };
        match self.store.insert_canned_response(&canned).await? {
            CannedSaved::Saved => Ok(canned),
            CannedSaved::ShortcutTaken | CannedSaved::NotFound => Err(ServiceError::Conflict(
                Conflict::CannedResponseAlreadyExists,
            )),
        }
    }

    /// Changes the fields given (admins); 404 for another tenant's.
    pub async fn update(
        &self,
        caller: &Caller,
        id: CannedResponseId,
        fields: CannedFields,
    ) -> Result<CannedResponse, ServiceError> {
        caller.require_admin()?;
        let mut canned = self.get(caller, id).await?;
        if let Some(shortcut) = fields.shortcut {
            canned.shortcut = parse_shortcut(&shortcut)?;
        }
        if let Some(title) = fields.title {
            canned.title = parse_title(&title)?;
        }
        if let Some(content) = fields.content {
            canned.content = parse_content(&content, self.max_text_chars)?;
        }
        canned.updated_at_ms = now_ms();
        match self.store.update_canned_response(&canned).await? {
            CannedSaved::Saved => Ok(canned),
            CannedSaved::ShortcutTaken => Err(ServiceError::Conflict(
                Conflict::CannedResponseAlreadyExists,
            )),
            CannedSaved::NotFound => Err(ServiceError::NotFound(Missing::CannedResponse)),
        }
    }

    /// Deletes one (admins); 404 for another tenant's.
    pub async fn delete(&self, caller: &Caller, id: CannedResponseId) -> Result<(), ServiceError> {
        caller.require_admin()?;
        if self
            .store
            .delete_canned_response(caller.tenant(), id)
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(Missing::CannedResponse))
        }
    }

    /// The name of a channel of the caller's tenant, for `{{channel.name}}`
    /// (any agent: the name alone, not the settings admins see).
    pub async fn channel_name(
        &self,
        caller: &Caller,
        channel: ChannelId,
    ) -> Result<Option<String>, ServiceError> {
        Ok(self
            .channels
            .channel(caller.tenant(), channel)
            .await?
            .map(|c| c.name))
    }
}
