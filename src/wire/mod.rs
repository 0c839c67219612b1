//! Wire shapes: how domain values look to each kind of client. The visitor
//! shapes follow visitor-api.md (Airy's chat plugin), the agent shapes
//! agent-api.md (wazo-chatd). Serialising is the only thing done here.

pub mod channel;
pub mod visitor;
pub mod wazo;
