//! `needs_order = true` on an answer intent is shorthand for a small flow: find the order
//! (named in the message, the only recent one, or "which one?" from a list), check it is the
//! customer's, then say the answer with `{order}` — and hand the conversation to the team when
//! the intent says `handoff`. The flow is written here as flow TOML and loaded like the
//! bundle's own files, so it is validated (messages, slots, operations) like them; its
//! problems name the intent's file.

/// The flow an answer intent with `needs_order` runs.
pub fn flow_name(intent: &str) -> String {
    format!("answer:{intent}")
}

/// The flow's source for `intent`, whose answer is the message `key`.
pub fn source(intent: &str, description: &str, key: &str, handoff: bool) -> String {
    let (description, key, reason) = (lit(description), lit(key), lit(intent));
    let handoff = if handoff {
        format!("\n[[steps]]\njob = \"handoff\"\nreason = {reason}\norder = \"{{o.id}}\"\n")
    } else {
        String::new()
    };
    format!(
        r#"description = {description}
slots = ["order"]

[[steps]]
branch = [{{ if = "order", goto = "read" }}]

[[steps]]
action = "list_recent_orders"
into = "recent"
on = {{ none = "no_orders", one = "read" }}

[[steps]]
ask = "order"
prompt = "order.which"

[[steps]]
id = "read"
call = "orders.get_status"
with = {{ order_id = "{{order}}" }}
into = "o"
on_missing = "not_found"

[[steps]]
say = {key}
vars = {{ order = "{{o.id}}" }}
{handoff}
[[steps]]
end = true

[[steps]]
id = "no_orders"
say = "order.none_recent"
next = "end"

[[steps]]
id = "not_found"
say = "order.not_found"
"#
    )
}

/// `text` as a TOML string, whatever it holds (quotes, accents, backslashes).
fn lit(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_description_makes_a_flow_that_parses() {
        let text = source("x", "cafe\u{301} \"orders\" \\ {n}", "answer.x", true);
        let flow = crate::flow::parse::parse("answer:x", "intents/x.toml", &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(flow.description, "cafe\u{301} \"orders\" \\ {n}");
    }
}
