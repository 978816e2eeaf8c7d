//! In-memory [`EdgeStore`] and [`LinkAudit`]: the unit tests', and a single-replica demo's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::GrantId;
use portcullis_domain::audit::AuditEvent;
use portcullis_domain::directory::DirectoryRecord;

use crate::card::GrantCard;
use crate::ports::{AuditError, Binding, EdgeStore, LinkAudit, LinkState, MessageRef, StoreError};

#[derive(Debug, Default)]
struct Records {
    bindings: BTreeMap<(String, String), Binding>,
    links: BTreeMap<String, LinkState>,
    cards: BTreeMap<String, GrantCard>,
    messages: BTreeMap<String, Vec<MessageRef>>,
    notified: BTreeSet<String>,
    directory: BTreeMap<String, DirectoryRecord>,
    expiries: BTreeSet<(DateTime<Utc>, GrantId)>,
}

/// Every record in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
}

impl MemoryStore {
    /// Put what the directory says about a person (as the directory worker would).
    pub fn put_directory_record(&self, record: DirectoryRecord) {
        if let Ok(mut records) = self.records.lock() {
            records.directory.insert(record.user.clone(), record);
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Records) -> T) -> Result<T, StoreError> {
        let mut records = self.records.lock().map_err(|_| StoreError("poisoned".into()))?;
        Ok(f(&mut records))
    }
}

fn key(team: &str, user: &str) -> (String, String) {
    (team.to_owned(), user.to_owned())
}

#[async_trait]
impl EdgeStore for MemoryStore {
    async fn binding(&self, team_id: &str, user_id: &str) -> Result<Option<Binding>, StoreError> {
        self.with(|r| r.bindings.get(&key(team_id, user_id)).cloned())
    }
    async fn put_binding(&self, team_id: &str, user_id: &str, binding: &Binding) -> Result<(), StoreError> {
        self.with(|r| {
            r.bindings.insert(key(team_id, user_id), binding.clone());
        })
    }
    async fn delete_binding(&self, team_id: &str, user_id: &str) -> Result<bool, StoreError> {
        self.with(|r| r.bindings.remove(&key(team_id, user_id)).is_some())
    }
    async fn put_link(&self, state: &str, link: &LinkState) -> Result<(), StoreError> {
        self.with(|r| {
            r.links.insert(state.to_owned(), link.clone());
        })
    }
    async fn link(&self, state: &str, now: DateTime<Utc>) -> Result<Option<LinkState>, StoreError> {
        self.with(|r| r.links.get(state).filter(|l| l.expires_at > now).cloned())
    }
    async fn take_link(&self, state: &str, now: DateTime<Utc>) -> Result<Option<LinkState>, StoreError> {
        self.with(|r| r.links.remove(state).filter(|l| l.expires_at > now))
    }
    async fn card(&self, grant: &GrantId) -> Result<Option<GrantCard>, StoreError> {
        self.with(|r| r.cards.get(grant.as_str()).cloned())
    }
    async fn put_card(&self, card: &GrantCard) -> Result<bool, StoreError> {
        self.with(|r| {
            let stored = r.cards.get(card.grant_id.as_str()).map_or(0, |c| c.version);
            if stored != card.version {
                return false;
            }
            let mut next = card.clone();
            next.version += 1;
            r.cards.insert(card.grant_id.to_string(), next);
            true
        })
    }
    async fn add_message(&self, grant: &GrantId, message: &MessageRef) -> Result<(), StoreError> {
        self.with(|r| {
            let list = r.messages.entry(grant.to_string()).or_default();
            if !list.contains(message) {
                list.push(message.clone());
            }
        })
    }
    async fn messages(&self, grant: &GrantId) -> Result<Vec<MessageRef>, StoreError> {
        self.with(|r| r.messages.get(grant.as_str()).cloned().unwrap_or_default())
    }
    async fn claim_notification(&self, grant: &GrantId) -> Result<bool, StoreError> {
        self.with(|r| r.notified.insert(grant.to_string()))
    }
    async fn schedule_expiry(&self, grant: &GrantId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|r| {
            r.expiries.insert((at, grant.clone()));
        })
    }
    async fn due_expiries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(GrantId, DateTime<Utc>)>, StoreError> {
        self.with(|r| {
            r.expiries.iter().take_while(|(at, _)| *at <= now).take(limit).map(|(at, g)| (g.clone(), *at)).collect()
        })
    }
    async fn clear_expiry(&self, grant: &GrantId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|r| {
            r.expiries.remove(&(at, grant.clone()));
        })
    }
    async fn directory_record(&self, subject: &str) -> Result<Option<DirectoryRecord>, StoreError> {
        self.with(|r| r.directory.get(subject).cloned())
    }
}

/// Audit events kept in memory.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    pub events: Mutex<Vec<AuditEvent>>,
}

#[async_trait]
impl LinkAudit for MemoryAudit {
    async fn publish(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.events.lock().map_err(|_| AuditError("poisoned".into()))?.push(event.clone());
        Ok(())
    }
}
