//! The workspace directory: users, user groups, channels and DMs, and how a `channel`
//! parameter resolves to a conversation (with Slack's error codes when it does not).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::EmulatedUser;
use super::tz;

/// The DM between the bot and a user: deterministic, so tests can predict it.
pub fn dm_channel_id(user_id: &str) -> String {
    let suffix = user_id.strip_prefix(['U', 'W']).unwrap_or(user_id);
    format!("D{suffix}")
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Channel {
    pub name: String,
    pub bot_is_member: bool,
    pub members: BTreeSet<String>,
    pub is_private: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub users: BTreeMap<String, EmulatedUser>,
    pub usergroups: HashMap<String, Vec<String>>,
    pub channels: HashMap<String, Channel>,
    /// DMs opened by conversations.open, so a second open reports `already_open`.
    pub open_dms: BTreeSet<String>,
}

/// A conversation a message can go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Conversation {
    Dm { id: String, user: String },
    Channel { id: String },
}

impl Conversation {
    pub fn id(&self) -> &str {
        match self {
            Conversation::Dm { id, .. } | Conversation::Channel { id } => id,
        }
    }
}

impl Directory {
    pub fn user(&self, id: &str) -> Option<&EmulatedUser> {
        self.users.get(id)
    }

    /// The user on the other side of a DM id.
    pub fn dm_user(&self, dm_id: &str) -> Option<&EmulatedUser> {
        let suffix = dm_id.strip_prefix('D')?;
        ["U", "W"]
            .iter()
            .find_map(|p| self.users.get(&format!("{p}{suffix}")))
    }

    /// A user the bot may DM: exists, is active and is not a bot.
    pub fn dm_target(&self, user_id: &str) -> Result<&EmulatedUser, &'static str> {
        let user = self.user(user_id).ok_or("user_not_found")?;
        if user.deleted {
            Err("account_inactive")
        } else if user.is_bot {
            Err("cannot_dm_bot")
        } else {
            Ok(user)
        }
    }

    /// The id of the channel named `#name` (Slack accepts a channel's name where it takes an id).
    pub fn channel_named(&self, name: &str) -> Option<String> {
        let name = name.strip_prefix('#')?;
        self.channels
            .iter()
            .filter(|(_, c)| c.name == name)
            .map(|(id, _)| id.clone())
            .min()
    }

    /// Where a `channel` parameter (U…/W… user, D… DM, C…/G… channel, `#name`) points, for
    /// posting.
    pub fn resolve(&self, channel: &str) -> Result<Conversation, &'static str> {
        if channel.starts_with('#') {
            let id = self.channel_named(channel).ok_or("channel_not_found")?;
            return self.resolve(&id);
        }
        match channel.chars().next() {
            Some('U' | 'W') => {
                let user = self.dm_target(channel)?;
                Ok(Conversation::Dm {
                    id: dm_channel_id(&user.id),
                    user: user.id.clone(),
                })
            }
            Some('D') => {
                let user = self.dm_user(channel).ok_or("channel_not_found")?;
                let user = self.dm_target(&user.id)?;
                Ok(Conversation::Dm {
                    id: channel.to_string(),
                    user: user.id.clone(),
                })
            }
            Some('C' | 'G') => match self.channels.get(channel) {
                Some(c) if c.bot_is_member => Ok(Conversation::Channel {
                    id: channel.to_string(),
                }),
                Some(_) => Err("not_in_channel"),
                None => Err("channel_not_found"),
            },
            _ => Err("channel_not_found"),
        }
    }

    /// A user object shaped like `users.info`'s, with the zone's offset at `now`.
    pub fn user_json(&self, u: &EmulatedUser, team_id: &str, now: DateTime<Utc>) -> Value {
        let (tz_offset, tz_label) = tz::offset_and_label(&u.tz, now);
        let (first_name, last_name) = u
            .real_name
            .split_once(' ')
            .unwrap_or((u.real_name.as_str(), ""));
        // Slack's default avatar, the same URL at every size.
        let avatar_hash = format!("g{:011x}", fnv(&u.id) & 0xFFF_FFFF_FFFF);
        let image = |size: u32| {
            format!("https://secure.gravatar.com/avatar/{avatar_hash}.jpg?s={size}&d=mp")
        };
        let mut profile = json!({
            "title": u.title,
            "phone": "",
            "skype": "",
            "real_name": u.real_name,
            "real_name_normalized": u.real_name,
            "display_name": u.name,
            "display_name_normalized": u.name,
            "fields": null,
            "status_text": u.status_text,
            "status_emoji": u.status_emoji,
            "status_emoji_display_info": [],
            "status_expiration": 0,
            "avatar_hash": avatar_hash,
            "first_name": first_name,
            "last_name": last_name,
            "image_24": image(24),
            "image_32": image(32),
            "image_48": image(48),
            "image_72": image(72),
            "image_192": image(192),
            "image_512": image(512),
            "status_text_canonical": "",
            "team": team_id,
        });
        if !u.email.is_empty() {
            profile["email"] = json!(u.email);
        }
        if u.is_bot {
            profile["always_active"] = json!(false);
        }
        json!({
            "id": u.id,
            "team_id": team_id,
            "name": u.name,
            "deleted": u.deleted,
            "color": "9f69e7",
            "real_name": u.real_name,
            "tz": u.tz,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": false,
            "is_owner": false,
            "is_primary_owner": false,
            "is_restricted": u.is_restricted,
            "is_ultra_restricted": false,
            "is_bot": u.is_bot,
            "is_app_user": false,
            "updated": 1_700_000_000,
            "is_email_confirmed": !u.email.is_empty(),
            "who_can_share_contact_card": "EVERYONE",
        })
    }
}

/// FNV-1a, for ids that must be the same on every run.
pub(crate) fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let mut d = Directory::default();
        for u in [
            EmulatedUser::new("U1", "UTC"),
            EmulatedUser::new("U2", "UTC").deleted(),
            EmulatedUser::new("U3", "UTC").bot(),
        ] {
            d.users.insert(u.id.clone(), u);
        }
        d.channels.insert(
            "C1".into(),
            Channel {
                bot_is_member: true,
                ..Channel::default()
            },
        );
        d.channels.insert("C2".into(), Channel::default());
        d
    }

    #[test]
    fn user_ids_resolve_to_their_dm() {
        let d = directory();
        let dm = Conversation::Dm {
            id: "D1".into(),
            user: "U1".into(),
        };
        assert_eq!(d.resolve("U1"), Ok(dm.clone()));
        assert_eq!(d.resolve("D1"), Ok(dm));
        assert_eq!(d.resolve("U9"), Err("user_not_found"));
        assert_eq!(d.resolve("D9"), Err("channel_not_found"));
        assert_eq!(d.resolve("U2"), Err("account_inactive"));
        assert_eq!(d.resolve("U3"), Err("cannot_dm_bot"));
    }

    #[test]
    fn channels_need_the_bot_as_a_member() {
        let d = directory();
        assert!(d.resolve("C1").is_ok());
        assert_eq!(d.resolve("C2"), Err("not_in_channel"));
        assert_eq!(d.resolve("C3"), Err("channel_not_found"));
        assert_eq!(d.resolve("#general"), Err("channel_not_found"));
        let mut d = d;
        d.channels.get_mut("C1").expect("C1").name = "general".into();
        assert_eq!(
            d.resolve("#general"),
            Ok(Conversation::Channel { id: "C1".into() })
        );
    }
}
