# longrun — every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
GO    ?= go

# Lambda functions: one directory under functions/ each.
FUNCTIONS := $(notdir $(wildcard functions/*))
# Lambda build: static, no RPC shim, reproducible, stripped (STYLE.md habit 9).
LAMBDA_ARCH  ?= arm64
LAMBDA_BUILD  = CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

.PHONY: help run test check node-deps browser-deps lint moto bench soak build functions deploy clean invoke

# cfn-lint and moto (the second AWS emulator of the tests) live in the machine
# image's pyenv Python: its shims go on PATH even where no shell profile put
# them there (internal/awstest also finds moto under ~/.pyenv by itself).
PYENV_ROOT ?= $(HOME)/.pyenv
export PATH := $(if $(wildcard $(PYENV_ROOT)/shims),$(PYENV_ROOT)/shims:)$(PATH)

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

run: ## the whole app on 127.0.0.1:3000 (longrun dev), no AWS, no Docker
	@echo "Building longrun (the first build on a fresh machine takes about two minutes)..."
	@$(GO) build -o bin/longrun ./cmd/longrun
	./bin/longrun dev --allow-loopback-webhooks

test: lint node-deps browser-deps moto ## everything CI runs: format, vet, staticcheck, tidy, cfn-lint, all tests under -race
	CI=true $(GO) test -race -count=1 ./...

# The Node side of the interop tests (the official standardwebhooks package,
# and the reference jsonata package that decides where the Go JSONata differs).
node-deps: webhook/testdata/node_modules/.installed internal/asl/testdata/jsonata/node_modules/.installed
webhook/testdata/node_modules/.installed: webhook/testdata/package-lock.json
	npm ci --prefix webhook/testdata --no-audit --no-fund --prefer-offline
	touch $@
internal/asl/testdata/jsonata/node_modules/.installed: internal/asl/testdata/jsonata/package-lock.json
	npm ci --prefix internal/asl/testdata/jsonata --no-audit --no-fund --prefer-offline
	touch $@

# The web console's browser tests: Debian's chromium and playwright-core.
browser-deps: internal/console/testdata/browser/node_modules/.installed ## Debian chromium (if missing) and playwright-core, for the console's browser tests
	@./.ci/chromium.sh
internal/console/testdata/browser/node_modules/.installed: internal/console/testdata/browser/package-lock.json
	npm ci --prefix internal/console/testdata/browser --no-audit --no-fund --prefer-offline
	touch $@

check: ## gofmt, go vet, staticcheck, go mod tidy -diff
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff

lint: check ## check + cfn-lint on template.yaml
	@command -v cfn-lint >/dev/null || { echo "cfn-lint is missing: it ships in this machine image's Python (pip install cfn-lint where PyPI is reachable)"; exit 1; }
	cfn-lint template.yaml

moto: ## check that moto (internal/awstest's second AWS emulator) is installed
	@python3 -c 'import moto' 2>/dev/null || command -v moto_server >/dev/null || \
	  { echo "moto is missing: it ships in this machine image's Python (pip install 'moto[server]' where PyPI is reachable; internal/awstest says which interpreters it tried)"; exit 1; }

bench: ## the benchmarks of docs/benchmarks.md: end to end beside River, the engine, SQLite, ASL
	bench/compare.sh
	$(GO) test -run '^$$' -bench BenchmarkPayload64K -benchtime 300x -count 3 ./internal/devapp
	$(GO) test -run '^$$' -bench BenchmarkStartup100k -benchtime 5x -count 3 ./internal/devapp
	$(GO) test -run '^$$' -bench BenchmarkExecutions -benchtime 20000x -count 3 ./internal/local
	$(GO) test -run '^$$' -bench BenchmarkMap -benchtime 20x -count 3 ./internal/local
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/sqlite ./internal/asl ./jobs/...

SOAK_DURATION ?= 10m
soak: ## longrun dev at half its sustainable start rate for SOAK_DURATION (default 10m): docs/soak.csv and docs/soak.svg (not part of make test)
	$(GO) run ./internal/devapp/soak -duration $(SOAK_DURATION) -out docs

functions: ## cross-compile every function to build/<name>/bootstrap (linux/$(LAMBDA_ARCH))
	@for fn in $(FUNCTIONS); do \
	  $(LAMBDA_BUILD) -o build/$$fn/bootstrap ./functions/$$fn || exit 1; \
	  ls -l build/$$fn/bootstrap | awk -v fn=$$fn '{printf "%-12s %9d bytes\n", fn, $$5}'; \
	done

build: ## sam build (needs the SAM CLI)
	sam build

deploy: build ## sam deploy (needs an AWS account)
	sam deploy

clean:
	rm -rf build .aws-sam

# sam build (Metadata BuildMethod: makefile) runs build-<LogicalId> with
# ARTIFACTS_DIR set, e.g. build-StartFunction builds ./functions/start; every
# function is built from the root go.mod (CodeUri: .). docs/sam.md says why.
# (A pattern rule, so not .PHONY: make skips implicit rules for phony targets.)
build-%Function:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(shell echo '$*' | tr A-Z a-z)

FN    ?= worker
EVENT ?= events/$(FN).json
invoke: ## one function under the Lambda Runtime Interface Emulator, AWS calls to kumo: make invoke FN=worker EVENT=events/worker.json
	@echo "Building $(FN) and starting the emulator (the first build takes a couple of minutes)..."
	@answer=$$(mktemp); trap 'rm -f "$$answer"' EXIT; \
	  $(GO) test -count=1 -v -run '^TestInvoke$$' ./internal/samtest -args -fn=$(FN) -event=$(abspath $(EVENT)) -answer="$$answer"; status=$$?; \
	  if [ -s "$$answer" ]; then printf '\n%s answered:\n' '$(FN)'; cat "$$answer"; echo; fi; \
	  exit $$status
