//! WebSockets: the STOMP frame codec, the one socket loop both sockets run
//! on (`session`), the visitor socket `/ws.chatplugin`, and the agent event
//! socket `/api/websocketd/`.

pub mod agent;
pub mod session;
pub mod stomp;
pub mod upgrade;
pub mod visitor;
