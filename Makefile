# `sam build` runs `make build-<LogicalId>` here, once per function, with ARTIFACTS_DIR set to
# the function's `.aws-sam/build/<LogicalId>/` (template.yaml: `BuildMethod: makefile`, this
# directory as ContextPath and WorkingDirectory).
#
# Each function is built as SAM's rust-cargolambda build method built it (`cargo lambda build
# --release --arm64` in the function's directory), without the development feature set
# (`--no-default-features`: see shared/Cargo.toml's `dev-unify` and `bundled-bot`), but
# only after `switchboard check` passed on the bot bundle and the configuration the binary
# embeds (config/connectors.toml and config/webhooks.toml). The bot bundle itself is the
# BotLayer: config/bot (or BOT=<directory>), without its conversation tests, copied to the
# layer's bot/ (the functions' /opt/bot) after `switchboard check` passed on it. A bundle that
# `check` refuses never reaches a deployable artifact. The check runs the operator command from
# the host's dev profile (`./dev/test` builds it; `./dev/up` its dependencies): about a second
# per target once built.

FUNCTIONS := build-ChatFunction build-WebhookFunction build-FulfillmentFunction build-RelayFunction

build-ChatFunction: BIN := chat
build-WebhookFunction: BIN := webhook
build-FulfillmentFunction: BIN := fulfillment
build-RelayFunction: BIN := relay

BOT ?= config/bot

build-BotLayer:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run sam build" >&2; exit 1; }
	cargo run --quiet --package switchboard-cli -- check --bot "$(BOT)"
	rm -rf "$(ARTIFACTS_DIR)/bot"
	mkdir -p "$(ARTIFACTS_DIR)/bot"
	cp -R "$(BOT)/." "$(ARTIFACTS_DIR)/bot/"
	rm -rf "$(ARTIFACTS_DIR)/bot/tests"

$(FUNCTIONS): check
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run sam build" >&2; exit 1; }
	cd functions/$(BIN) && cargo lambda build --release --arm64 --no-default-features \
		--lambda-dir "$(ARTIFACTS_DIR)" --flatten $(BIN)

check:
	cargo run --quiet --package switchboard-cli -- check

.PHONY: $(FUNCTIONS) build-BotLayer check
