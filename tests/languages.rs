//! The README's conversation (where is my order → a late order's refund offered → yes →
//! fulfillment's confirmation and email) in each language the bot speaks besides English,
//! against the running functions, moto and the demo systems: the language is told from what the
//! customer writes, and what the jobs say later is in it too.

use std::time::Duration;

use serde_json::json;
use switchboard_it::{texts, Stack};

struct Case {
    language: &'static str,
    ask: &'static str,
    yes: &'static str,
    /// Parts of the status and offer, the request's answer, the confirmation and the email's
    /// subject, in the language (money as its `[format]` writes it).
    offer: &'static str,
    requested: &'static str,
    issued: &'static str,
    subject: &'static str,
}

const CASES: &[Case] = &[
    Case {
        language: "es",
        ask: "hola, ¿dónde está mi pedido?",
        yes: "sí, por favor",
        offer: "¿Quieres que te devolvamos 45,99",
        requested: "he solicitado un reembolso de 45,99",
        issued: "Ya hemos emitido tu reembolso de 45,99",
        subject: "Tu reembolso del pedido #",
    },
    Case {
        language: "fr",
        ask: "bonjour, je n'ai toujours pas reçu mon colis",
        yes: "oui, volontiers",
        offer: "Souhaitez-vous être remboursé de 45,99",
        requested: "j'ai demandé le remboursement de 45,99",
        issued: "Votre remboursement de 45,99",
        subject: "Remboursement de votre commande #",
    },
    Case {
        language: "de",
        ask: "hallo, wo ist meine Bestellung?",
        yes: "ja, gerne",
        offer: "Möchten Sie eine Erstattung über 45,99",
        requested: "ich habe eine Erstattung über 45,99",
        issued: "Ihre Erstattung über 45,99",
        subject: "Ihre Erstattung für die Bestellung #",
    },
];

#[tokio::test]
async fn the_late_order_refund_conversation_in_each_language() {
    let stack = Stack::connect().await;
    for case in CASES {
        let lang = case.language;
        let customer = stack.create_customer(&format!("cust_{lang}")).await;
        let late = stack
            .create_order_with(
                &customer,
                json!({ "total_cents": 4599, "placed_days_ago": 12, "promised_in_days": -4, "carrier": "FedEx" }),
            )
            .await;
        let token = stack.token(&customer);

        let first = stack.say(&token, None, case.ask).await;
        assert_eq!(first["language"], lang, "{first}");
        let conv = first["conversation_id"].as_str().unwrap().to_string();
        let status = texts(&first).join("\n");
        assert!(
            status.contains(&format!("#{late}")) && status.contains(case.offer),
            "{lang}: {status}"
        );

        let yes = stack.say(&token, Some(&conv), case.yes).await;
        assert_eq!(yes["language"], lang, "{yes}");
        let said = texts(&yes).join("\n");
        assert!(said.contains(case.requested), "{lang}: {said}");

        // Fulfillment's confirmation, written later by the refund job, in the language.
        let confirmation = stack
            .wait_for_message(&token, &conv, Duration::from_secs(60), |m| {
                m["text"].as_str().unwrap_or_default().contains(case.issued)
            })
            .await;
        assert_eq!(confirmation["role"], "bot");

        // And its email, once, with the language's subject.
        let key = format!("email:default:refund:{late}");
        let (_, emails) = stack.wait_for_email(&key, Duration::from_secs(30)).await;
        let to = format!("{customer}@example.com");
        let email = emails["sent"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["to"] == to.as_str())
            .unwrap_or_else(|| panic!("{lang}: no email to {to}: {emails}"));
        let subject = email["subject"].as_str().unwrap_or_default();
        assert!(subject.starts_with(case.subject), "{lang}: {subject}");
    }
}
