//! WebSockets: the STOMP frame codec, the visitor socket `/ws.chatplugin`,
//! and the agent event socket `/api/websocketd/`.

pub mod agent;
pub mod stomp;
pub mod upgrade;
pub mod visitor;
