//! WebSockets: the STOMP frame codec and the visitor socket `/ws.chatplugin`.

pub mod stomp;
pub mod upgrade;
pub mod visitor;
