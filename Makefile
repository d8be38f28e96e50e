# `sam build` runs `make build-<LogicalId>` here, once per function, with ARTIFACTS_DIR set to
# the function's `.aws-sam/build/<LogicalId>/` (template.yaml: `BuildMethod: makefile`, this
# directory as ContextPath and WorkingDirectory).
#
# Each function is built as SAM's rust-cargolambda build method built it (`cargo lambda build
# --release --arm64` in the function's directory), without the development feature set
# (`--no-default-features`: see shared/Cargo.toml's `dev-unify`), but
# only after `switchboard check` passed on what that binary embeds: the default bot bundle
# (config/bot), config/connectors.toml and config/webhooks.toml. A bundle that `check` refuses
# never reaches a deployable artifact. The check runs the operator command from the host's dev
# profile (`./dev/test` builds it; `./dev/up` its dependencies): about a second per function
# once built.

FUNCTIONS := build-ChatFunction build-WebhookFunction build-FulfillmentFunction build-RelayFunction

build-ChatFunction: BIN := chat
build-WebhookFunction: BIN := webhook
build-FulfillmentFunction: BIN := fulfillment
build-RelayFunction: BIN := relay

$(FUNCTIONS): check
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run sam build" >&2; exit 1; }
	cd functions/$(BIN) && cargo lambda build --release --arm64 --no-default-features \
		--lambda-dir "$(ARTIFACTS_DIR)" --flatten $(BIN)

check:
	cargo run --quiet --package switchboard-cli -- check

.PHONY: $(FUNCTIONS) check
