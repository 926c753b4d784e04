# The compose stack, with one local inference runtime at a time. `make help` lists the targets.
# Plain POSIX make: every recipe is sh, nothing GNU-only.
.POSIX:

COMPOSE = docker compose
# The runtime to run beside the gateway: vllm, ollama, llamacpp, tgi, sglang or localai.
BACKEND =
# Where `make health` reaches the gateway.
GATEWAY_URL = http://localhost:8080
# `make env-<runtime> FORCE=1` overwrites an existing .env.
FORCE =
# `make logs SERVICE=gateway` follows one service.
SERVICE =

RUNTIMES = vllm ollama llamacpp tgi sglang localai
# Every profile, so down, ps and logs see a runtime whichever way it was started.
ALL_PROFILES = --profile vllm --profile ollama --profile llamacpp --profile tgi --profile sglang --profile localai

# The runtime's base URL inside the compose network: what the gateway's catalogue provider uses.
NETWORK_URL = case "$$rt" in \
	vllm) echo http://vllm:8000/v1 ;; \
	ollama) echo http://ollama:11434/v1 ;; \
	llamacpp) echo http://llamacpp:8080/v1 ;; \
	tgi) echo http://tgi:80/v1 ;; \
	sglang) echo http://sglang:30000/v1 ;; \
	localai) echo http://localai:8080/v1 ;; \
	*) exit 1 ;; \
	esac
# The runtime's health endpoint from the host (ports published on 127.0.0.1 in docker-compose.yml).
HOST_HEALTH_URL = case "$$rt" in \
	vllm) echo http://127.0.0.1:8000/health ;; \
	ollama) echo http://127.0.0.1:11434/api/version ;; \
	llamacpp) echo http://127.0.0.1:8081/health ;; \
	tgi) echo http://127.0.0.1:8082/health ;; \
	sglang) echo http://127.0.0.1:30000/health ;; \
	localai) echo http://127.0.0.1:8083/readyz ;; \
	*) exit 1 ;; \
	esac

.PHONY: help up down ps logs health env-vllm env-ollama env-llamacpp env-tgi env-sglang env-localai

help:
	@echo 'ai-gateway compose stack (gateway, PostgreSQL, Redis, Prometheus, Grafana, Jaeger)'
	@echo ''
	@echo '  make env-<runtime> [FORCE=1]  copy deploy/env/<runtime>.env.example to .env (never over an'
	@echo '                                existing .env without FORCE=1); then fill in its keys'
	@echo '  make up [BACKEND=<runtime>]   build and start the stack, with that runtime routed to'
	@echo '  make down                     stop and remove every container (volumes are kept)'
	@echo '  make ps                       list the containers and their health'
	@echo '  make logs [SERVICE=<name>]    follow the logs (of one service)'
	@echo '  make health [BACKEND=...]     check the gateway /health and the running runtime(s)'
	@echo ''
	@echo 'Runtimes: $(RUNTIMES)'
	@echo 'A runtime elsewhere: set BACKEND_KIND, BACKEND_BASE_URL and MODEL_NAME in .env instead.'

up:
	@if [ -z "$(BACKEND)" ]; then \
		$(COMPOSE) up -d --build; \
	else \
		rt='$(BACKEND)'; \
		url=$$($(NETWORK_URL)) || { echo "make: BACKEND must be one of: $(RUNTIMES)" >&2; exit 2; }; \
		var=$$(echo "$$rt" | tr '[:lower:]' '[:upper:]')_BASE_URL; \
		echo "make: profile $$rt, $$var=$$url"; \
		env "$$var=$$url" $(COMPOSE) --profile "$$rt" up -d --build; \
	fi

down:
	$(COMPOSE) $(ALL_PROFILES) down

ps:
	$(COMPOSE) $(ALL_PROFILES) ps

logs:
	$(COMPOSE) $(ALL_PROFILES) logs -f --tail=200 $(SERVICE)

health:
	@status=0; \
	printf 'gateway   %s/health: ' '$(GATEWAY_URL)'; \
	if curl -fsS -m 5 '$(GATEWAY_URL)/health'; then echo; else echo 'NOT HEALTHY'; status=1; fi; \
	runtimes='$(BACKEND)'; \
	if [ -z "$$runtimes" ]; then \
		running=$$($(COMPOSE) $(ALL_PROFILES) ps --services --status running 2>/dev/null); \
		for rt in $(RUNTIMES); do \
			case " $$(echo $$running) " in *" $$rt "*) runtimes="$$runtimes $$rt" ;; esac; \
		done; \
	fi; \
	[ -n "$$runtimes" ] || echo 'runtime   none running (make up BACKEND=<runtime>)'; \
	for rt in $$runtimes; do \
		url=$$($(HOST_HEALTH_URL)) || { echo "make: BACKEND must be one of: $(RUNTIMES)" >&2; exit 2; }; \
		code=$$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$$url" 2>/dev/null); \
		printf '%-9s %s: HTTP %s\n' "$$rt" "$$url" "$${code:-000}"; \
		[ "$$code" = 200 ] || status=1; \
	done; \
	exit $$status

env-vllm env-ollama env-llamacpp env-tgi env-sglang env-localai:
	@rt=$$(echo '$@' | sed 's/^env-//'); src="deploy/env/$$rt.env.example"; \
	if [ -e .env ] && [ '$(FORCE)' != 1 ]; then \
		echo "make: .env exists; keeping it (make $@ FORCE=1 overwrites it)" >&2; exit 1; \
	fi; \
	cp "$$src" .env && \
	echo "make: wrote .env from $$src; set AI_GATEWAY_API_KEYS and GRAFANA_ADMIN_PASSWORD in it, then: make up BACKEND=$$rt"
