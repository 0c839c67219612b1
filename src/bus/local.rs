//! The in-process bus of the embedded default: publishing is a direct call
//! into this instance's hub, which already knows which topics have sessions.

use std::sync::{Arc, Weak};

use async_trait::async_trait;

use super::{Bus, BusError, BusSink, Topic};
use crate::domain::Published;

pub struct LocalBus {
    /// Weak: the hub owns the bus, not the other way round.
    sink: Weak<dyn BusSink>,
}

impl LocalBus {
    pub fn new(sink: Weak<dyn BusSink>) -> LocalBus {
        LocalBus { sink }
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, topic: &Topic, event: Arc<Published>) -> Result<(), BusError> {
        if let Some(sink) = self.sink.upgrade() {
            sink.deliver(topic, event);
        }
        Ok(())
    }

    async fn subscribe(&self, _topic: &Topic) -> Result<(), BusError> {
        Ok(())
    }

    async fn unsubscribe(&self, _topic: &Topic) -> Result<(), BusError> {
        Ok(())
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}
