//! Applications (desk-api.md, "Integrations"): a tenant's API clients, such
//! as bots, managed by its admins. Creating one answers its token once
//! (only a hash is kept); revoking one ends it at once on every instance:
//! its token is checked against the store on every call, its open event
//! sockets close (told over the bus), the channels that named it as their
//! bot stop doing so, and the conversations it held return to the queue.

use std::sync::Arc;

use super::error::{Missing, ServiceError};
use super::rooms::RoomService;
use super::{Caller, Events, Parts};
use crate::domain::application::{self, Application, Scopes};
use crate::domain::{time::now_ms, Agent, AgentId, Agents, Event, Published, Role};

/// A new application, as an admin asks for it.
pub struct NewApplication {
    pub name: String,
    pub scopes: Vec<String>,
}

/// A created application and its token: the only time the token is seen.
pub struct Created {
    pub application: Application,
    pub token: String,
}

pub struct ApplicationService {
    store: Arc<dyn crate::store::ApplicationStore>,
    rooms: Arc<RoomService>,
    events: Events,
}

impl ApplicationService {
    pub fn new(parts: &Parts, rooms: Arc<RoomService>) -> ApplicationService {
        ApplicationService {
            store: parts.store.clone(),
            rooms,
            events: parts.events(),
        }
    }

    /// `POST /applications` (admins): a new application of the caller's
    /// tenant, and its token (shown once). A bad name or scope is a 400
    /// naming the field, and nothing is stored.
    pub async fn create(
        &self,
        caller: &Caller,
        new: NewApplication,
    ) -> Result<Created, ServiceError> {
        caller.require_admin()?;
        let name =
            application::parse_name(&new.name).map_err(|m| ServiceError::field("name", m))?;
        let scopes = Scopes::parse(new.scopes.iter().map(String::as_str))
            .map_err(|m| ServiceError::field("scopes", m))?;
        let id = AgentId::new();
        let now = now_ms();
        let application = Application {
            id,
            tenant_id: caller.tenant(),
            name: name.clone(),
            scopes,
            created_by: Some(caller.id()),
            created_at_ms: now,
            revoked_at_ms: None,
        };
        let agent = Agent {
            id,
            tenant_id: caller.tenant(),
            email: Application::agent_email(id),
            display_name: name,
            avatar_url: None,
            role: Role::Application,
            // Not a PHC string: no password ever verifies against it.
            password_hash: "!application".into(),
            disabled: false,
        };
        let token = application::new_token();
        self.store
            .insert_application(&application, &agent, &application::token_hash(&token))
            .await?;
        Ok(Created { application, token })
    }

    /// `GET /applications` (admins): the tenant's applications, revoked
    /// ones included (with when), oldest first; never a token.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Application>, ServiceError> {
        caller.require_admin()?;
        Ok(self.store.applications(caller.tenant()).await?)
    }

    /// An application of the caller's tenant (admins), for a channel's
    /// `bot` setting: it must exist and not be revoked.
    pub async fn live(&self, caller: &Caller, id: AgentId) -> Result<Application, ServiceError> {
        caller.require_admin()?;
        self.store
            .application(caller.tenant(), id)
            .await?
            .filter(|a| !a.is_revoked())
            .ok_or(ServiceError::NotFound(Missing::Application))
    }

    /// `DELETE /applications/<uuid>` (admins): revokes it at once (see the
    /// module's doc). Revoking a revoked application changes nothing; a
    /// foreign or unknown id is a 404.
    pub async fn revoke(&self, caller: &Caller, id: AgentId) -> Result<(), ServiceError> {
        caller.require_admin()?;
        let tenant = caller.tenant();
        let before = self
            .store
            .application(tenant, id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Application))?;
        if before.is_revoked() {
            return Ok(());
        }
        self.store
            .revoke_application(tenant, id, now_ms())
            .await?
            .ok_or(ServiceError::NotFound(Missing::Application))?;
        // Its sockets, on every instance, close now.
        self.events
            .publish(Published {
                event: Event::SessionsRevoked {
                    agent: id,
                    session: None,
                },
                tenant_id: tenant,
                visitor_room: None,
                agents: Agents::Only { ids: vec![id] },
            })
            .await;
        // Nobody would answer the visitors it was talking to: they wait
        // for an agent instead.
        let leaving = Agent {
            id,
            tenant_id: tenant,
            email: Application::agent_email(id),
            display_name: before.name.clone(),
            avatar_url: None,
            role: Role::Application,
            password_hash: String::new(),
            disabled: true,
        };
        for room in self.store.open_rooms_of(tenant, id).await? {
            let room = match self.rooms.visitor_room_of(tenant, room).await {
                Ok(room) => room,
                Err(err) => {
                    tracing::warn!(%err, "a revoked application's room cannot be read");
                    continue;
                }
            };
            if let Err(err) = self.rooms.requeue_from(&room, &leaving).await {
                tracing::warn!(%err, "a revoked application's room cannot return to the queue");
            }
        }
        Ok(())
    }
}
