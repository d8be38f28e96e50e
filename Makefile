# `sam build` runs `make build-<LogicalId>` here, once per function, with ARTIFACTS_DIR set to
# the function's `.aws-sam/build/<LogicalId>/` (template.yaml: `BuildMethod: makefile`, this
# directory as ContextPath and WorkingDirectory).
#
# Each function is built as SAM's rust-cargolambda build method built it (`cargo lambda build
# --release --arm64` in the function's directory), without the development feature set
# (`--no-default-features`: see shared/Cargo.toml's `dev-unify` and `bundled-bot`), but
# only after `switchboard check` passed on the bot bundle and the configuration the binary
# embeds (config/connectors.toml and config/webhooks.toml). The bot bundle itself is the
# BotLayer: config/bot (or BOT_BUNDLE=<directory>) copied to the layer's bot/ (the functions'
# /opt/bot) after `switchboard check` passed on it. A bundle that
# `check` refuses never reaches a deployable artifact. The check runs the operator command from
# the host's dev profile (`./dev/test` builds it; `./dev/up` its dependencies): about a second
# per target once built.

# No unwind tables for the crates compiled here (std's own stay): the release profile aborts on
# a panic, so nothing unwinds, and a panic's message and location are still logged; only a
# backtrace (RUST_BACKTRACE, never set in Lambda) would stop short. ~0.2 MB of each binary.
# Here, not in .cargo/config.toml: a debug build on an arm64 Linux host unwinds and would refuse
# it. dev/bench's sizes step builds with the same flags.
ARM64_RUSTFLAGS := -C force-unwind-tables=no

FUNCTIONS := build-ChatFunction build-WebhookFunction build-FulfillmentFunction build-RelayFunction

build-ChatFunction: BIN := chat
build-WebhookFunction: BIN := webhook
build-FulfillmentFunction: BIN := fulfillment
build-RelayFunction: BIN := relay

# The bundle the layer holds, and the connector files its flows are checked against (those the
# functions load: SWITCHBOARD_CONNECTORS_FILE, by default the compiled-in config/connectors.toml).
BOT_BUNDLE ?= config/bot
BOT_CONNECTORS ?= config/connectors.toml

# The files a function loads, and the examples by name only (loading checks that each intent has
# some; the model was trained from them): no conversation tests, notes or dotfiles.
build-BotLayer:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run sam build" >&2; exit 1; }
	cargo run --quiet --package switchboard-cli -- check --bot "$(BOT_BUNDLE)" --connectors $(BOT_CONNECTORS)
	rm -rf "$(ARTIFACTS_DIR)/bot"
	mkdir -p "$(ARTIFACTS_DIR)/bot"
	cd "$(BOT_BUNDLE)" && for f in bot.toml *.bin intents flows messages words examples; do \
		if [ -e "$$f" ]; then cp -R "$$f" "$(ARTIFACTS_DIR)/bot/"; fi; done
	find "$(ARTIFACTS_DIR)/bot" \( -name '.*' -o -name '*.md' \) -prune -exec rm -rf {} +
	find "$(ARTIFACTS_DIR)/bot/examples" -type f -exec truncate -s 0 {} +

$(FUNCTIONS): check
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run sam build" >&2; exit 1; }
	cd functions/$(BIN) && CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$(ARM64_RUSTFLAGS)" \
		cargo lambda build --release --arm64 --no-default-features \
		--lambda-dir "$(ARTIFACTS_DIR)" --flatten $(BIN)

check:
	cargo run --quiet --package switchboard-cli -- check

.PHONY: $(FUNCTIONS) build-BotLayer check
