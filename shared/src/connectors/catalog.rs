//! The operations the flows call, by name, and what each one takes and gives back. A connector
//! file configures these and nothing else: flows never see a URL, and a typo in an operation's
//! name is an error when the file is loaded rather than a silent no-op.

use std::fmt;

/// An operation the flows call (`orders.get_status`, `payments.refund`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    OrdersGetStatus,
    OrdersListByCustomer,
    CrmGetCustomer,
    CrmFindCustomer,
    CrmFindByVendorId,
    /// Customers by phone number (E.164): how a messaging channel's sender is linked to an
    /// account, where the channel vouches for the number.
    CrmFindByPhone,
    InventoryAvailability,
    PaymentsRefund,
    EmailSend,
    /// A message out through a messaging channel (see `channels`).
    WhatsappSendMessage,
    TwilioSendMessage,
    TelegramSendMessage,
    /// An operation a connector file declares for a system of the company's own (see
    /// [`Declared`]): what it takes and gives back is in the file, not here.
    Declared(&'static Declared),
}

/// An operation declared in a connector file, with its inputs and the fields it gives back.
///
/// Leaked once when its file is loaded (at a function's init, or by `switchboard check`) and
/// kept for the life of the process, like the built-in operations' tables: that keeps [`Op`]
/// `Copy` and the names `&'static` for records, templates and errors, at the cost of a few
/// hundred bytes per operation per load.
#[derive(Debug)]
pub struct Declared {
    pub system: &'static str,
    pub operation: &'static str,
    /// `system.operation`.
    pub name: &'static str,
    pub inputs: &'static [Input],
    pub returns: Returns,
}

impl Declared {
    pub fn leak(self) -> &'static Declared {
        Box::leak(Box::new(self))
    }
}

// Declared operations are one per name: compared and ordered by it.
impl PartialEq for Declared {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Declared {}
impl std::hash::Hash for Declared {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}
impl PartialOrd for Declared {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Declared {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(other.name)
    }
}

/// What a successful call gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// One record, or none (HTTP 404, or `null` where the record should be).
    One(Shape),
    /// A list of records (HTTP 404 reads as an empty list).
    Many(Shape),
    /// Nothing but success.
    Nothing,
}

/// The typed records the flows read; each field a mapping may fill is listed in [`Shape::fields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Order,
    Customer,
    Product,
    Refund,
    /// A declared operation's record: the fields its file lists, with their kinds.
    Declared(&'static [Field]),
}

/// How a target field's value is checked and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A whole number (quantities).
    Integer,
    /// Money in minor units (cents). A number is taken as cents; text is refused unless the
    /// mapping says `as = "cents"`: systems that send amounts as text send "45.99" (Shopify's
    /// `amount`), and "45" read as 45 cents would refund a hundredth of the price.
    Minor,
    /// An RFC 3339 time.
    Time,
    /// One of our order statuses; other values are kept as "unknown", never fatal.
    OrderStatus,
    /// A list of order items, each mapped with [`ITEM_FIELDS`].
    Items,
    /// true or false (JSON booleans, or the text "true"/"false").
    Flag,
    /// A declared status: one of these words (a system's values mapped onto them with `map`),
    /// anything else read as "unknown", never fatal and never passed on raw.
    Status(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Dotted for nested targets: `total.amount_cents`.
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

const ORDER_FIELDS: &[Field] = &[
    req("id", Kind::Text),
    req("customer_id", Kind::Text),
    req("status", Kind::OrderStatus),
    req("placed_at", Kind::Time),
    opt("promised_by", Kind::Time),
    opt("delivered_at", Kind::Time),
    opt("carrier", Kind::Text),
    opt("tracking_url", Kind::Text),
    req("total.amount_cents", Kind::Minor),
    req("total.currency", Kind::Text),
    opt("items", Kind::Items),
    opt("payment_ref", Kind::Text),
];

/// The fields of each element of an order's `items`.
pub const ITEM_FIELDS: &[Field] = &[req("name", Kind::Text), opt("quantity", Kind::Integer)];

const CUSTOMER_FIELDS: &[Field] = &[
    req("id", Kind::Text),
    opt("email", Kind::Text),
    opt("name", Kind::Text),
    opt("email_verified", Kind::Flag),
];

const PRODUCT_FIELDS: &[Field] = &[
    req("sku", Kind::Text),
    req("name", Kind::Text),
    req("available", Kind::Integer),
    // What one costs, when the company's inventory knows (both, or no price).
    opt("price.amount_cents", Kind::Minor),
    opt("price.currency", Kind::Text),
];

const REFUND_FIELDS: &[Field] = &[
    req("id", Kind::Text),
    opt("status", Kind::Text),
    opt("amount.amount_cents", Kind::Minor),
    opt("amount.currency", Kind::Text),
];

impl Shape {
    pub fn fields(self) -> &'static [Field] {
        match self {
            Shape::Order => ORDER_FIELDS,
            Shape::Customer => CUSTOMER_FIELDS,
            Shape::Product => PRODUCT_FIELDS,
            Shape::Refund => REFUND_FIELDS,
            Shape::Declared(fields) => fields,
        }
    }
}

/// A value an operation's templates may use: `{order_id}`. An optional one may be absent at a
/// call, so it may only stand as a whole value (which is then left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    pub name: &'static str,
    pub required: bool,
}

const fn input(name: &'static str) -> Input {
    Input {
        name,
        required: true,
    }
}

const fn maybe(name: &'static str) -> Input {
    Input {
        name,
        required: false,
    }
}

/// The input that makes an unsafe operation safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";

impl Op {
    pub const ALL: [Op; 12] = [
        Op::OrdersGetStatus,
        Op::OrdersListByCustomer,
        Op::CrmGetCustomer,
        Op::CrmFindCustomer,
        Op::CrmFindByVendorId,
        Op::CrmFindByPhone,
        Op::InventoryAvailability,
        Op::PaymentsRefund,
        Op::EmailSend,
        Op::WhatsappSendMessage,
        Op::TwilioSendMessage,
        Op::TelegramSendMessage,
    ];

    /// The system the operation belongs to: the `[systems.NAME]` of a connector file.
    pub fn system(self) -> &'static str {
        match self {
            Op::OrdersGetStatus | Op::OrdersListByCustomer => "orders",
            Op::CrmGetCustomer
            | Op::CrmFindCustomer
            | Op::CrmFindByVendorId
            | Op::CrmFindByPhone => "crm",
            Op::InventoryAvailability => "inventory",
            Op::PaymentsRefund => "payments",
            Op::EmailSend => "email",
            Op::WhatsappSendMessage => "whatsapp",
            Op::TwilioSendMessage => "twilio",
            Op::TelegramSendMessage => "telegram",
            Op::Declared(d) => d.system,
        }
    }

    /// The operation's key under its system: `[systems.orders.operations.get_status]`.
    pub fn operation(self) -> &'static str {
        match self {
            Op::OrdersGetStatus => "get_status",
            Op::OrdersListByCustomer => "list_by_customer",
            Op::CrmGetCustomer => "get_customer",
            Op::CrmFindCustomer => "find_customer",
            Op::CrmFindByVendorId => "find_by_vendor_id",
            Op::CrmFindByPhone => "find_by_phone",
            Op::InventoryAvailability => "availability",
            Op::PaymentsRefund => "refund",
            Op::EmailSend => "send",
            Op::WhatsappSendMessage | Op::TwilioSendMessage | Op::TelegramSendMessage => {
                "send_message"
            }
            Op::Declared(d) => d.operation,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::OrdersGetStatus => "orders.get_status",
            Op::OrdersListByCustomer => "orders.list_by_customer",
            Op::CrmGetCustomer => "crm.get_customer",
            Op::CrmFindCustomer => "crm.find_customer",
            Op::CrmFindByVendorId => "crm.find_by_vendor_id",
            Op::CrmFindByPhone => "crm.find_by_phone",
            Op::InventoryAvailability => "inventory.availability",
            Op::PaymentsRefund => "payments.refund",
            Op::EmailSend => "email.send",
            Op::WhatsappSendMessage => "whatsapp.send_message",
            Op::TwilioSendMessage => "twilio.send_message",
            Op::TelegramSendMessage => "telegram.send_message",
            Op::Declared(d) => d.name,
        }
    }

    pub fn inputs(self) -> &'static [Input] {
        const ORDER: &[Input] = &[input("order_id")];
        const CUSTOMER: &[Input] = &[input("customer_id")];
        const EMAIL: &[Input] = &[input("email")];
        const PHONE: &[Input] = &[input("phone")];
        const VENDOR: &[Input] = &[input("vendor"), input("vendor_customer_id")];
        const REFUND: &[Input] = &[
            input("order_id"),
            input("amount_cents"),
            input("amount"),
            input("currency"),
            input("currency_lower"),
            input(IDEMPOTENCY_KEY),
            maybe("payment_ref"),
        ];
        const SEND: &[Input] = &[
            input("to"),
            input("subject"),
            input("text"),
            input(IDEMPOTENCY_KEY),
        ];
        // Channel sends: what `channels::*::render` fills in. None of the three providers takes
        // an idempotency key on sends; the job's effect ledger sends each message once.
        const WHATSAPP: &[Input] = &[
            input("phone_number_id"),
            input("to"),
            input("type"),
            maybe("text"),
            maybe("interactive"),
            maybe("template"),
        ];
        const TWILIO: &[Input] = &[input("to"), input("from"), input("body")];
        const TELEGRAM: &[Input] = &[input("chat_id"), input("text"), maybe("reply_markup")];
        match self {
            Op::OrdersGetStatus => ORDER,
            Op::OrdersListByCustomer | Op::CrmGetCustomer => CUSTOMER,
            Op::CrmFindCustomer => EMAIL,
            Op::CrmFindByVendorId => VENDOR,
            Op::CrmFindByPhone => PHONE,
            Op::InventoryAvailability => &[],
            Op::PaymentsRefund => REFUND,
            Op::EmailSend => SEND,
            Op::WhatsappSendMessage => WHATSAPP,
            Op::TwilioSendMessage => TWILIO,
            Op::TelegramSendMessage => TELEGRAM,
            Op::Declared(d) => d.inputs,
        }
    }

    pub fn returns(self) -> Returns {
        match self {
            Op::OrdersGetStatus => Returns::One(Shape::Order),
            Op::OrdersListByCustomer => Returns::Many(Shape::Order),
            Op::CrmGetCustomer => Returns::One(Shape::Customer),
            Op::CrmFindCustomer | Op::CrmFindByVendorId | Op::CrmFindByPhone => {
                Returns::Many(Shape::Customer)
            }
            Op::InventoryAvailability => Returns::Many(Shape::Product),
            Op::PaymentsRefund => Returns::One(Shape::Refund),
            Op::EmailSend
            | Op::WhatsappSendMessage
            | Op::TwilioSendMessage
            | Op::TelegramSendMessage => Returns::Nothing,
            Op::Declared(d) => d.returns,
        }
    }

    /// A built-in operation by its system and name (declared ones are the file's: see
    /// `ConnectorsConfig::find`).
    pub fn find(system: &str, operation: &str) -> Option<Op> {
        Op::ALL
            .into_iter()
            .find(|op| op.system() == system && op.operation() == operation)
    }

    /// The built-in systems; any other name in a connector file is a system of the company's
    /// own, whose operations the file declares.
    pub fn systems() -> impl Iterator<Item = &'static str> {
        [
            "orders",
            "crm",
            "inventory",
            "payments",
            "email",
            "whatsapp",
            "twilio",
            "telegram",
        ]
        .into_iter()
    }

    pub fn of_system(system: &str) -> impl Iterator<Item = Op> + '_ {
        Op::ALL.into_iter().filter(move |op| op.system() == system)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_system_dot_operation() {
        for op in Op::ALL {
            assert_eq!(op.name(), format!("{}.{}", op.system(), op.operation()));
            assert_eq!(Op::find(op.system(), op.operation()), Some(op));
            assert!(Op::systems().any(|s| s == op.system()));
        }
    }
}
