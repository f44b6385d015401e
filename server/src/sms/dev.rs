//! The dev gateway: "sends" by storing the message in the `sms_outbox` table, where
//! `GET /admin/v1/sms` (and `opkey demo`) read it.

use super::{SmsError, SmsFuture, SmsGateway};
use crate::db::{Db, outbox};
use opkey_protocol::api::SmsMessage;

#[derive(Debug, Clone)]
pub struct DevGateway {
    db: Db,
}

impl DevGateway {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl SmsGateway for DevGateway {
    fn send<'a>(&'a self, message: &'a SmsMessage) -> SmsFuture<'a> {
        Box::pin(async move {
            let message = message.clone();
            self.db
                .write(move |tx| Ok(outbox::insert(tx, &message)?))
                .await
                .map_err(|e| SmsError::Outbox(e.to_string()))
        })
    }

    fn keeps_outbox(&self) -> bool {
        true
    }
}
