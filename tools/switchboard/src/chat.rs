//! `switchboard chat`: talk to the bot from a terminal (or a pipe), one line per message, with
//! conversations kept in memory. The company's systems are the conversation tests' fixtures, or
//! the systems a connector file points at (the demo systems under `./dev/up`, say).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use switchboard::auth::{Principal, DEFAULT_TENANT};
use switchboard::bot::conversation_tests::{check_operations, offline_service, parse_fixtures};
use switchboard::bot::Bot;
use switchboard::config::ChatSettings;
use switchboard::connectors::catalog::Op;
use switchboard::connectors::config as connectors;
use switchboard::connectors::configured::Configured;
use switchboard::connectors::engine::{http_client, Connectors};
use switchboard::connectors::InventoryPort;
use switchboard::dialogue::Dialogue;
use switchboard::secrets::Secrets;
use switchboard::store::memory::MemoryStore;
use switchboard::turn::{PostMessage, TurnService};

pub struct Options {
    /// The bundle to talk to.
    pub bot: PathBuf,
    pub fixtures: PathBuf,
    pub connectors: Vec<PathBuf>,
    pub customer: Option<String>,
}

pub fn run(options: Options) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async {
        let (service, customer) = match build(&options).await {
            Ok(built) => built,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        converse(&service, &customer).await
    })
}

/// The turn service and who is talking.
async fn build(o: &Options) -> Result<(TurnService, String), String> {
    if o.connectors.is_empty() {
        let bot = Arc::new(Bot::load(&o.bot).map_err(|e| e.to_string())?);
        let name = o.fixtures.display().to_string();
        let text = std::fs::read_to_string(&o.fixtures)
            .map_err(|e| format!("{name}: cannot read: {e}"))?;
        let fixtures = parse_fixtures(&name, &text).map_err(|e| e.to_string())?;
        check_operations(&name, &text, &fixtures, &bot.declared).map_err(|e| e.to_string())?;
        let customer = o
            .customer
            .clone()
            .or_else(|| fixtures.customers.first().map(|c| c.id.clone()))
            .ok_or_else(|| format!("{name}: no customers; pass --customer"))?;
        return Ok((offline_service(bot, &fixtures).await.0, customer));
    }
    let customer = o
        .customer
        .clone()
        .ok_or("--customer is needed with --connectors: whose orders to look up")?;
    Ok((with_connectors(&o.bot, &o.connectors).await?, customer))
}

/// Secrets come from the environment only (`env:` references): this runs away from AWS.
/// The bundle's flows may call what the files declare (its own connectors.toml is not read).
async fn with_connectors(bundle: &Path, files: &[PathBuf]) -> Result<TurnService, String> {
    let spec = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let env = |name: &str| std::env::var(name).ok();
    let config = connectors::load(Some(&spec), &env, None)
        .await
        .map_err(|e| e.to_string())?;
    config
        .require(
            &[Op::OrdersGetStatus, Op::OrdersListByCustomer],
            "switchboard chat",
        )
        .map_err(|e| e.to_string())?;
    let bot = Arc::new(Bot::load_with(bundle, &config.declared).map_err(|e| e.to_string())?);
    let order_ids = config.order_ids().cloned();
    let systems = Configured(Arc::new(Connectors::new(
        config,
        http_client(),
        Arc::new(Secrets::from_process(None)),
        std::time::Duration::from_secs(300),
    )));
    let inventory = systems
        .0
        .has(Op::InventoryAvailability)
        .then(|| Arc::new(systems.clone()) as Arc<dyn InventoryPort>);
    let store = Arc::new(MemoryStore::new());
    let dialogue = Dialogue::of(bot, Arc::new(systems.clone()))
        .with_operations(Some(Arc::new(systems)))
        .with_order_ids(order_ids)
        .with_inventory(inventory)
        .with_ledger(store.clone());
    Ok(TurnService::new(store, dialogue, ChatSettings::default()))
}

async fn converse(service: &TurnService, customer: &str) -> ExitCode {
    let who = Principal::customer(DEFAULT_TENANT, customer);
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!("Talking as {customer}. One message per line; end with Ctrl-D.");
    }
    let mut conversation_id = None;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("you> ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.next() else { break };
        let Ok(line) = line else {
            eprintln!("error: standard input is not text");
            return ExitCode::FAILURE;
        };
        if line.trim().is_empty() {
            continue;
        }
        let req = PostMessage {
            conversation_id: conversation_id.clone(),
            text: line,
            client_message_id: None,
            language: None,
            quick_reply: None,
        };
        match service.post(&who, req).await {
            Ok(reply) => {
                conversation_id = Some(reply.conversation_id);
                for m in reply.replies {
                    println!("bot> {}", m.text.replace('\n', "\n     "));
                }
                println!(
                    "     [{} {:.2}, {}, {}]",
                    reply.facts.intent.name(),
                    reply.facts.confidence,
                    reply.facts.ending.as_str(),
                    reply.language.as_deref().unwrap_or("-")
                );
            }
            // A message the API would refuse (too long, say): the conversation goes on.
            Err(e) => eprintln!("error: {e}"),
        }
    }
    ExitCode::SUCCESS
}

/// `config/bot/tests/fixtures.yaml` under `bundle`.
pub fn default_fixtures(bundle: &Path) -> PathBuf {
    bundle.join("tests").join("fixtures.yaml")
}
