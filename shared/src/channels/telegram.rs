//! Telegram's Bot API.
//!
//! - Telegram signs nothing: `setWebhook`'s `secret_token` (1-256 of `A-Z a-z 0-9 _ -`) comes
//!   back in `X-Telegram-Bot-Api-Secret-Token` on every delivery, and [`verify`] compares it.
//! - A webhook body is one `Update`, holding one of `message`, `edited_message`,
//!   `callback_query` (an inline-keyboard button pressed), and others. Customers are the users
//!   who write to the bot in a private chat: groups and channels give nothing, and so do edits
//!   (the customer's first words were answered already).
//! - Replies are `telegram.send_message` calls (`chat_id`, `text`, `reply_markup`), with the
//!   quick replies as an inline keyboard. A pressed button stays "loading" in the customer's app
//!   until the bot answers the callback query (`answerCallbackQuery` with the `cb:` id's rest).

use std::collections::HashMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::{Choice, ConstantTimeEq};

use super::message::{
    check_size, message_id, numbered, split, ChannelParseError, Content, Inbound, Outgoing,
    SendInputs,
};
use crate::signatures::{Headers, Rejection};

/// The connector operation a reply is sent with.
pub const SEND_OPERATION: &str = "telegram.send_message";

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Whether Telegram's `setWebhook` accepts `token` as its `secret_token`.
pub fn valid_secret_token(token: &str) -> bool {
    (1..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Verifies a delivery: its secret header is one of `secret_tokens` (more than one while the
/// webhook's token is being changed). Compared in constant time; a header Telegram could not
/// have sent is malformed before any comparison.
pub fn verify<H: Headers + ?Sized>(secret_tokens: &[&str], headers: &H) -> Result<(), Rejection> {
    let given = headers
        .header(SECRET_HEADER)
        .ok_or(Rejection::MissingHeader(SECRET_HEADER))?;
    if !valid_secret_token(given) {
        return Err(Rejection::MalformedHeader(SECRET_HEADER));
    }
    // An empty configured token would never have been accepted by Telegram: it matches nothing.
    let matched = secret_tokens
        .iter()
        .filter(|t| !t.is_empty())
        .fold(Choice::from(0), |acc, t| {
            acc | t.as_bytes().ct_eq(given.as_bytes())
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(Rejection::Mismatch)
    }
}

#[derive(Deserialize)]
struct Update {
    message: Option<TgMessage>,
    callback_query: Option<CallbackQuery>,
}

#[derive(Deserialize)]
struct TgMessage {
    message_id: Option<i64>,
    date: Option<i64>,
    chat: Option<Chat>,
    from: Option<User>,
    text: Option<String>,
    /// Every other field, read only for its name: what kind of message this is.
    #[serde(flatten)]
    other: HashMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct Chat {
    id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct User {
    language_code: Option<String>,
}

#[derive(Deserialize)]
struct CallbackQuery {
    id: Option<String>,
    from: Option<User>,
    message: Option<CallbackMessage>,
    data: Option<String>,
}

/// The message the pressed button was on (possibly an `InaccessibleMessage`, which still has
/// its chat).
#[derive(Deserialize)]
struct CallbackMessage {
    chat: Option<Chat>,
}

/// The fields that make a message something other than text, most specific first (an
/// animation also has `document`, a venue `location`): the first one present names it.
const KINDS: [&str; 18] = [
    "animation",
    "sticker",
    "photo",
    "video_note",
    "video",
    "voice",
    "audio",
    "document",
    "paid_media",
    "story",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
    "game",
    "invoice",
    "checklist",
];

/// The chat id of a customer's private chat, or None for a group, supergroup or channel.
/// Telegram sends the chat's `type`; without one (as in older samples), a positive id is a
/// user's (groups' and channels' ids are negative).
fn private_chat(chat: Option<Chat>, field: &'static str) -> Result<Option<i64>, ChannelParseError> {
    let chat = chat.ok_or(ChannelParseError::Missing(field))?;
    let id = chat.id.ok_or(ChannelParseError::Missing(field))?;
    let private = match chat.kind.as_deref() {
        Some(kind) => kind == "private",
        None => id > 0,
    };
    Ok(private.then_some(id))
}

/// An IETF language tag as Telegram gives it ("en", "pt-br"); anything else is dropped, as a
/// language is only a hint.
fn language(user: Option<User>) -> Option<String> {
    user.and_then(|u| u.language_code).filter(|l| {
        (1..=35).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The customer message of an update, or nothing for updates that are not one.
pub fn normalise(body: &[u8]) -> Result<Vec<Inbound>, ChannelParseError> {
    check_size(body)?;
    let update: Update = serde_json::from_slice(body)?;
    if let Some(m) = update.message {
        let Some(chat) = private_chat(m.chat, "message.chat.id")? else {
            return Ok(Vec::new());
        };
        let number = m
            .message_id
            .ok_or(ChannelParseError::Missing("message.message_id"))?;
        let content = match m.text {
            Some(text) => Content::Text { text },
            None => Content::Unsupported {
                what: KINDS
                    .iter()
                    .find(|k| m.other.contains_key(**k))
                    .copied()
                    // A service message (a payment, a shared user...) or a kind newer than this.
                    .unwrap_or("other")
                    .into(),
            },
        };
        return Ok(vec![Inbound {
            message_id: message_id(&format!("{chat}:{number}")),
            user: chat.to_string(),
            business: None,
            phone: None,
            language: language(m.from),
            sent_at: m.date,
            content,
        }]);
    }
    if let Some(q) = update.callback_query {
        // Buttons of inline-mode messages have no chat, and games send no data: neither is a
        // quick reply of ours.
        let (Some(message), Some(data)) = (q.message, q.data) else {
            return Ok(Vec::new());
        };
        let Some(chat) = private_chat(message.chat, "callback_query.message.chat.id")? else {
            return Ok(Vec::new());
        };
        let id =
            q.id.ok_or(ChannelParseError::Missing("callback_query.id"))?;
        return Ok(vec![Inbound {
            message_id: message_id(&format!("cb:{id}")),
            user: chat.to_string(),
            business: None,
            phone: None,
            language: language(q.from),
            sent_at: None,
            // Telegram returns only the data; the label is the lead's to look up if needed.
            content: Content::Button {
                value: data,
                label: String::new(),
            },
        }]);
    }
    // edited_message, channel posts, inline queries, chat member changes...
    Ok(Vec::new())
}

/// Telegram's limits: a message's text is 4096 characters (UTF-16 units, after entities; we
/// send no entities), a button's `callback_data` 1-64 bytes.
const MAX_TEXT: usize = 4096;
const MAX_CALLBACK_DATA: usize = 64;

/// The `telegram.send_message` calls that send `out` to the chat `to`. Quick replies are an
/// inline keyboard, one button a row, on the last part, when every value fits a button's
/// data; otherwise they are numbered lines. Telegram has no business address: `business` is
/// ignored (the bot's token picks the sender).
pub fn render(to: &str, business: Option<&str>, out: &Outgoing) -> Vec<SendInputs> {
    let _ = business;
    // Chat ids are integers; a channel's "@username" is text.
    let chat_id = to.parse::<i64>().map_or_else(|_| json!(to), |id| json!(id));
    let text = out.text.trim();
    let replies = out.quick_replies;
    let keyboard = !replies.is_empty()
        && !text.is_empty()
        && replies.iter().all(|r| {
            !r.label.trim().is_empty() && (1..=MAX_CALLBACK_DATA).contains(&r.value.len())
        });
    let body = if keyboard {
        text.to_string()
    } else {
        numbered(text, replies)
    };
    let parts = split(&body, MAX_TEXT);
    let last = parts.len().saturating_sub(1);
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let mut call = vec![("chat_id", chat_id.clone()), ("text", json!(part))];
            if keyboard && i == last {
                let rows: Vec<Value> = replies
                    .iter()
                    .map(|r| json!([{"text": r.label, "callback_data": r.value}]))
                    .collect();
                call.push(("reply_markup", json!({"inline_keyboard": rows})));
            }
            call
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::message::{text_len, MAX_BODY};
    use crate::conversation::QuickReply;

    const TOKEN: &str = "tg-secret_Token-123";

    #[test]
    fn the_secret_header_must_be_ours() {
        let h: &[(&str, &str)] = &[("X-Telegram-Bot-Api-Secret-Token", TOKEN)];
        assert_eq!(verify(&[TOKEN], h), Ok(()));
        assert_eq!(verify(&["old-token", TOKEN], h), Ok(()));
        assert_eq!(verify(&["other-token"], h), Err(Rejection::Mismatch));
        assert_eq!(verify(&[], h), Err(Rejection::Mismatch));
        // A prefix or an extension of the token is not the token.
        for near in [
            "tg-secret_Token-12",
            "tg-secret_Token-1234",
            "TG-SECRET_TOKEN-123",
        ] {
            let h: &[(&str, &str)] = &[(SECRET_HEADER, near)];
            assert_eq!(verify(&[TOKEN], h), Err(Rejection::Mismatch), "{near}");
        }
    }

    #[test]
    fn missing_or_impossible_headers() {
        let none: &[(&str, &str)] = &[("x-other", TOKEN)];
        assert_eq!(
            verify(&[TOKEN], none),
            Err(Rejection::MissingHeader(SECRET_HEADER))
        );
        let long = "a".repeat(257);
        for bad in ["", "has space", "semi;colon", "é", long.as_str()] {
            let h: &[(&str, &str)] = &[(SECRET_HEADER, bad)];
            assert_eq!(
                verify(&[TOKEN, bad], h),
                Err(Rejection::MalformedHeader(SECRET_HEADER)),
                "{bad:?}"
            );
        }
        // An empty configured token never matches.
        let h: &[(&str, &str)] = &[(SECRET_HEADER, TOKEN)];
        assert_eq!(verify(&[""], h), Err(Rejection::Mismatch));
        assert!(valid_secret_token(&"Az09_-".repeat(42)));
        assert!(!valid_secret_token(""));
    }

    /// The text message of Telegram's webhook guide ("testing your bot with updates").
    #[test]
    fn telegrams_sample_text_message() {
        let body = br#"{
            "update_id":10000,
            "message":{
              "date":1441645532,
              "chat":{"last_name":"Test Lastname","id":1111111,"first_name":"Test","username":"Test"},
              "message_id":1365,
              "from":{"last_name":"Test Lastname","id":1111111,"first_name":"Test","username":"Test"},
              "text":"/start"
            }
        }"#;
        assert_eq!(
            normalise(body).unwrap(),
            [Inbound {
                message_id: "1111111:1365".into(),
                user: "1111111".into(),
                business: None,
                phone: None,
                language: None,
                sent_at: Some(1441645532),
                content: Content::Text {
                    text: "/start".into()
                },
            }]
        );
    }

    fn update(message: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"update_id": 93127, "message": message})).unwrap()
    }

    fn private_message(extra: Value) -> Value {
        let mut m = json!({
            "message_id": 77,
            "from": {"id": 424242, "is_bot": false, "first_name": "Noor", "language_code": "nl"},
            "chat": {"id": 424242, "first_name": "Noor", "type": "private"},
            "date": 1735700000
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }

    #[test]
    fn a_private_text_message_in_todays_shape() {
        let all = normalise(&update(private_message(
            json!({"text": "Is my order on its way?"}),
        )))
        .unwrap();
        assert_eq!(
            all,
            [Inbound {
                message_id: "424242:77".into(),
                user: "424242".into(),
                business: None,
                phone: None,
                language: Some("nl".into()),
                sent_at: Some(1735700000),
                content: Content::Text {
                    text: "Is my order on its way?".into()
                },
            }]
        );
    }

    #[test]
    fn other_messages_are_unsupported_by_kind() {
        let photo = json!({"photo": [{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 67}], "caption": "broken lid"});
        let cases = [
            (photo, "photo"),
            (
                json!({"sticker": {"file_id": "CAAC", "type": "regular"}}),
                "sticker",
            ),
            (
                json!({"location": {"latitude": 52.37, "longitude": 4.89}}),
                "location",
            ),
            (
                json!({"voice": {"file_id": "AwAD", "duration": 3}}),
                "voice",
            ),
            (json!({"document": {"file_id": "BQAD"}}), "document"),
            (
                json!({"animation": {"file_id": "CgAD"}, "document": {"file_id": "CgAD"}}),
                "animation",
            ),
            (
                json!({"venue": {"title": "Depot"}, "location": {"latitude": 1.0, "longitude": 2.0}}),
                "venue",
            ),
            (
                json!({"contact": {"phone_number": "+15550001111", "first_name": "Noor"}}),
                "contact",
            ),
            (json!({"successful_payment": {"currency": "EUR"}}), "other"),
        ];
        for (extra, what) in cases {
            let m = normalise(&update(private_message(extra)))
                .unwrap()
                .pop()
                .unwrap();
            assert_eq!(
                m.content,
                Content::Unsupported { what: what.into() },
                "{what}"
            );
        }
    }

    #[test]
    fn groups_channels_edits_and_other_updates_give_nothing() {
        let group = json!({"message_id": 5, "chat": {"id": -1001234567890_i64, "type": "supergroup", "title": "Shop fans"},
                           "from": {"id": 424242}, "date": 1735700000, "text": "hello bot"});
        assert_eq!(normalise(&update(group)).unwrap(), []);
        let untyped_group = json!({"message_id": 5, "chat": {"id": -4242}, "text": "hi"});
        assert_eq!(normalise(&update(untyped_group)).unwrap(), []);
        let edit = json!({"update_id": 1, "edited_message": {"message_id": 77, "chat": {"id": 424242, "type": "private"},
                          "date": 1, "edit_date": 2, "text": "changed my mind"}});
        assert_eq!(normalise(&serde_json::to_vec(&edit).unwrap()).unwrap(), []);
        for other in [
            json!({"update_id": 2, "channel_post": {"message_id": 1, "chat": {"id": -100, "type": "channel"}, "text": "x"}}),
            json!({"update_id": 3, "inline_query": {"id": "134567890097", "from": {"id": 1}, "query": "inline query", "offset": ""}}),
            json!({"update_id": 4, "my_chat_member": {"chat": {"id": 1, "type": "private"}}}),
            json!({"update_id": 5}),
        ] {
            assert_eq!(
                normalise(&serde_json::to_vec(&other).unwrap()).unwrap(),
                [],
                "{other}"
            );
        }
    }

    #[test]
    fn a_pressed_button_is_a_callback_query() {
        let body = json!({
            "update_id": 93128,
            "callback_query": {
                "id": "4382bfdwdsb323b2d9",
                "from": {"id": 424242, "is_bot": false, "first_name": "Noor", "language_code": "pt-br"},
                "message": {"message_id": 78, "date": 1735700005, "chat": {"id": 424242, "type": "private"},
                            "text": "Which order?"},
                "chat_instance": "-9023418741237",
                "data": "order:1042"
            }
        });
        assert_eq!(
            normalise(&serde_json::to_vec(&body).unwrap()).unwrap(),
            [Inbound {
                message_id: "cb:4382bfdwdsb323b2d9".into(),
                user: "424242".into(),
                business: None,
                phone: None,
                language: Some("pt-br".into()),
                sent_at: None,
                content: Content::Button {
                    value: "order:1042".into(),
                    label: String::new()
                },
            }]
        );
    }

    /// The callback query of Telegram's webhook guide is on an inline-mode message: no chat,
    /// so not a quick reply of ours. Neither is a game's button (no data).
    #[test]
    fn telegrams_sample_callback_and_games_give_nothing() {
        let sample = br#"{"update_id":10000,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"last_name":"Test Lastname","type":"private","id":1111111,"first_name":"Test Firstname","username":"Testusername"},"data":"Data from button callback","inline_message_id":"1234csdbsk4839"}}"#;
        assert_eq!(normalise(sample).unwrap(), []);
        let game = json!({"update_id": 1, "callback_query": {"id": "9", "from": {"id": 1},
            "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}, "game_short_name": "g"}});
        assert_eq!(normalise(&serde_json::to_vec(&game).unwrap()).unwrap(), []);
        let in_group = json!({"update_id": 1, "callback_query": {"id": "9", "from": {"id": 1},
            "message": {"message_id": 1, "date": 0, "chat": {"id": -5, "type": "group"}}, "data": "x"}});
        assert_eq!(
            normalise(&serde_json::to_vec(&in_group).unwrap()).unwrap(),
            []
        );
    }

    #[test]
    fn broken_updates_are_clear_errors() {
        assert!(matches!(
            normalise(b"[1,2]"),
            Err(ChannelParseError::Json {
                category: "data",
                ..
            })
        ));
        assert!(matches!(
            normalise(b"{"),
            Err(ChannelParseError::Json {
                category: "eof",
                ..
            })
        ));
        assert_eq!(
            normalise(&update(
                json!({"chat": {"id": 1, "type": "private"}, "text": "x"})
            )),
            Err(ChannelParseError::Missing("message.message_id"))
        );
        assert_eq!(
            normalise(&update(json!({"message_id": 1, "text": "x"}))),
            Err(ChannelParseError::Missing("message.chat.id"))
        );
        assert!(matches!(
            normalise(&update(json!({"message_id": "one", "chat": {"id": 1}}))),
            Err(ChannelParseError::Json {
                category: "data",
                ..
            })
        ));
        let no_id = json!({"update_id": 1, "callback_query": {"from": {"id": 1},
            "message": {"message_id": 1, "chat": {"id": 1, "type": "private"}}, "data": "x"}});
        assert_eq!(
            normalise(&serde_json::to_vec(&no_id).unwrap()),
            Err(ChannelParseError::Missing("callback_query.id"))
        );
        assert!(matches!(
            normalise(&vec![b' '; MAX_BODY + 1]),
            Err(ChannelParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn odd_languages_are_dropped() {
        let m = normalise(&update(private_message(json!({
            "text": "hi", "from": {"id": 424242, "language_code": "en; drop table"}
        }))))
        .unwrap()
        .pop()
        .unwrap();
        assert_eq!(m.language, None);
    }

    fn qr(pairs: &[(&str, &str)]) -> Vec<QuickReply> {
        pairs
            .iter()
            .map(|(l, v)| QuickReply {
                label: (*l).into(),
                value: (*v).into(),
            })
            .collect()
    }

    #[test]
    fn quick_replies_are_an_inline_keyboard() {
        let replies = qr(&[
            ("Track order 1042", "order:1042"),
            ("Something else", "other"),
        ]);
        let calls = render(
            "424242",
            None,
            &Outgoing {
                text: "Which order do you mean?",
                quick_replies: &replies,
            },
        );
        assert_eq!(
            calls,
            vec![vec![
                ("chat_id", json!(424242)),
                ("text", json!("Which order do you mean?")),
                (
                    "reply_markup",
                    json!({"inline_keyboard": [
                        [{"text": "Track order 1042", "callback_data": "order:1042"}],
                        [{"text": "Something else", "callback_data": "other"}]
                    ]})
                ),
            ]]
        );
    }

    #[test]
    fn values_over_64_bytes_fall_back_to_numbered_lines() {
        let long_value = "v".repeat(65);
        let replies = qr(&[("Yes", "yes"), ("No", long_value.as_str())]);
        let calls = render(
            "@shopchannel",
            None,
            &Outgoing {
                text: "Keep the subscription?",
                quick_replies: &replies,
            },
        );
        assert_eq!(
            calls,
            vec![vec![
                ("chat_id", json!("@shopchannel")),
                ("text", json!("Keep the subscription?\n\n1. Yes\n2. No")),
            ]]
        );
        // 64 bytes of multi-byte text is over the limit in bytes, not in characters.
        let replies = qr(&[("Ja", &"é".repeat(33))]);
        let calls = render(
            "1",
            None,
            &Outgoing {
                text: "t",
                quick_replies: &replies,
            },
        );
        assert_eq!(calls[0].len(), 2, "no keyboard");
    }

    #[test]
    fn long_text_is_split_and_the_keyboard_rides_on_the_last_part() {
        let long = "A long explanation of the delivery options. ".repeat(200);
        let replies = qr(&[("Got it", "ok")]);
        let calls = render(
            "424242",
            None,
            &Outgoing {
                text: &long,
                quick_replies: &replies,
            },
        );
        assert!(calls.len() >= 3);
        for (i, c) in calls.iter().enumerate() {
            assert!(text_len(c[1].1.as_str().unwrap()) <= 4096);
            assert_eq!(
                c.len() == 3,
                i == calls.len() - 1,
                "keyboard only on the last part"
            );
        }
        assert!(render(
            "1",
            None,
            &Outgoing {
                text: "",
                quick_replies: &[]
            }
        )
        .is_empty());
    }
}
