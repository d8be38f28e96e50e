//! The connectors' typed records as the flows see them (the fields `catalog::shape_fields`
//! promises validation), for the host the dialogue builds over its ports.

use crate::connectors::{Order, OrderStatus, Product};

use super::value::{Record, Value};

/// An order's fields: its status as the flows compare it (`'in_transit'`), its total as money,
/// its `summary` ("#1001 (Desk lamp)", phrased by the caller in the customer's language), its
/// `items` (their names, for matching what the customer calls it);
/// absent optional fields are left out.
pub fn order(o: &Order, summary: String) -> Record {
    let mut r = Record::new();
    let mut put = |k: &str, v: Value| {
        r.insert(k.to_string(), v);
    };
    put("id", Value::text(&o.id));
    put("customer_id", Value::text(&o.customer_id));
    put("status", Value::text(status(o.status)));
    put("placed_at", Value::Time(o.placed_at));
    if let Some(t) = o.promised_by {
        put("promised_by", Value::Time(t));
    }
    if let Some(t) = o.delivered_at {
        put("delivered_at", Value::Time(t));
    }
    if let Some(c) = &o.carrier {
        put("carrier", Value::text(c));
    }
    if let Some(u) = &o.tracking_url {
        put("tracking_url", Value::text(u));
    }
    if let Some(p) = &o.payment_ref {
        put("payment_ref", Value::text(p));
    }
    put("total", Value::Money(o.total.clone()));
    put("summary", Value::Text(summary));
    // What the customer calls the order by ("the mouse one"): its items' names.
    put("items", Value::Text(o.item_names()));
    r
}

/// A product's fields; `price` (money) only when the inventory gave one.
pub fn product(p: &Product) -> Record {
    let mut r = Record::from([
        ("sku".to_string(), Value::text(&p.sku)),
        ("name".to_string(), Value::text(&p.name)),
        (
            "available".to_string(),
            Value::Number(i64::from(p.available)),
        ),
    ]);
    if let Some(price) = &p.price {
        r.insert("price".to_string(), Value::Money(price.clone()));
    }
    r
}

/// The status as written in flows: the serde name (`out_for_delivery`).
pub fn status(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Processing => "processing",
        OrderStatus::Shipped => "shipped",
        OrderStatus::InTransit => "in_transit",
        OrderStatus::OutForDelivery => "out_for_delivery",
        OrderStatus::Delivered => "delivered",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::catalog::Shape;
    use crate::connectors::OrderItem;
    use crate::flow::catalog::shape_fields;
    use crate::money::Money;
    use time::macros::datetime;

    #[test]
    fn records_have_the_fields_and_types_validation_expects() {
        let o = Order {
            id: "1001".into(),
            customer_id: "c".into(),
            status: OrderStatus::OutForDelivery,
            placed_at: datetime!(2026-11-01 10:00 UTC),
            promised_by: Some(datetime!(2026-11-05 10:00 UTC)),
            delivered_at: Some(datetime!(2026-11-06 10:00 UTC)),
            carrier: Some("UPS".into()),
            tracking_url: Some("https://t.example".into()),
            total: Money {
                amount_cents: 100,
                currency: "USD".into(),
            },
            items: vec![OrderItem {
                name: "Desk lamp".into(),
                quantity: 1,
            }],
            payment_ref: Some("pi_1".into()),
        };
        let expected = shape_fields(Shape::Order);
        let r = order(&o, "#1001 (Desk lamp)".into());
        assert_eq!(r.len(), expected.len());
        for (name, ty) in expected {
            assert_eq!(r.get(&name).map(Value::type_of), Some(ty), "{name}");
        }
        assert_eq!(r["status"], Value::text("out_for_delivery"));
        assert_eq!(r["summary"], Value::text("#1001 (Desk lamp)"));
        // Every status reads as its serde name.
        for s in [
            OrderStatus::InTransit,
            OrderStatus::Cancelled,
            OrderStatus::Unknown,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), status(s));
        }
    }

    #[test]
    fn a_product_has_the_fields_validation_expects_and_a_price_only_when_known() {
        let mut p = Product {
            sku: "LAMP-01".into(),
            name: "Desk lamp".into(),
            available: 3,
            price: Some(Money {
                amount_cents: 2450,
                currency: "USD".into(),
            }),
        };
        let expected = shape_fields(Shape::Product);
        let r = product(&p);
        assert_eq!(r.len(), expected.len());
        for (name, ty) in expected {
            assert_eq!(r.get(&name).map(Value::type_of), Some(ty), "{name}");
        }
        p.price = None;
        let r = product(&p);
        assert!(!r.contains_key("price"));
        assert_eq!(r["available"], Value::Number(3));
        // Validation knows the price may be absent: flows branch on it before saying it.
        let (optional, _) = crate::flow::catalog::shape_facts(Shape::Product);
        assert_eq!(optional, ["price"]);
    }
}
