# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_secrets_sync_global_optspecs
    string join \n v/version c/config= vault-addr= vault-token= vault-role-id= vault-secret-id= vault-namespace= vault-cacert= vault-capath= vault-client-cert= vault-client-key= vault-tls-server-name= vault-skip-verify= watch-config= vault-max-response-bytes= vault-max-secret-fields= circuit-breaker-max-requests= circuit-breaker-interval= circuit-breaker-failure-threshold= circuit-breaker-timeout= log-level= log-format= http-port= http-bind= metrics-port= metrics-addr= enable-metrics= status-file= ready-policy= enable-tracing= otel-exporter-endpoint= initial-backoff= max-backoff= backoff-multiplier= refresh-jitter= state-dir= ready-allow-stale= audit-log= audit-log-file= shutdown-timeout= liveness-timeout= refresh-api= secrets-api= secrets-api-token-file= secrets-api-socket= secrets-api-socket-group= watch-debounce= once h/help
end

function __fish_secrets_sync_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_secrets_sync_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_secrets_sync_using_subcommand
    set -l cmd (__fish_secrets_sync_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -s c -l config -d 'The YAML file that lists the secrets' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-addr -d 'Vault/OpenBao address; overrides secretStore.address' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-token -d 'Token for token auth; overrides secretStore.token' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-role-id -d 'AppRole role ID; overrides secretStore.roleId' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-secret-id -d 'AppRole secret ID; overrides secretStore.secretId' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-namespace -d 'Vault Enterprise / OpenBao namespace (X-Vault-Namespace)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-cacert -d 'PEM file with the CA certificate(s) that sign Vault\'s TLS certificate' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-capath -d 'Directory of PEM CA certificates; overrides secretStore.tlsCAPath' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-client-cert -d 'Client certificate (PEM) for mutual TLS and cert auth; overrides secretStore.tlsClientCert' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-client-key -d 'The client certificate\'s private key (PEM); overrides secretStore.tlsClientKey' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-tls-server-name -d 'Name to verify in Vault\'s certificate (and send as SNI) instead of the address\'s host' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-skip-verify -d 'Disable TLS certificate verification (testing only)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l watch-config -d 'Reload the config file when it changes' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-max-response-bytes -d 'Largest Vault answer accepted, in bytes (64 KiB - 64 MiB; Vault\'s own default entry size is 1 MiB)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l vault-max-secret-fields -d 'Most fields and nested values one secret may have (1 - 1 000 000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l circuit-breaker-max-requests -d 'Probes let through while the circuit breaker is half-open (1-100)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l circuit-breaker-interval -d 'Period after which the closed breaker clears its failure counts (1s-24h, 0: never)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l circuit-breaker-failure-threshold -d 'Consecutive Vault failures (no answer, 5xx) that open the breaker (1-1000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l circuit-breaker-timeout -d 'Longest time the breaker stays open before probing again (1s-1h); the first open period is shorter and grows with each re-open up to this. It bounds how long files stay old after Vault returns from an outage' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l log-level -d 'error, warn, info, debug or trace (or a tracing filter directive)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l log-format -d 'json (default) or text' -r -f -a "json\t''
text\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l http-port -d 'Port of the probes, /health and /ready (0 disables that server)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l http-bind -d 'Address the probe server binds to' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l metrics-port -d 'Port of /status and /metrics, which name secrets, paths and errors (0 disables that server). Equal to HTTP_PORT: one server on HTTP_BIND serves all four endpoints' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l metrics-addr -d 'Address of the /status and /metrics server: loopback unless set' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l enable-metrics -d 'Serve the inspection listener (METRICS_ADDR:METRICS_PORT); false turns it off like METRICS_PORT=0 (the Go tool\'s switch)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l status-file -d 'Where readiness is written for `secrets-sync isready`' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l ready-policy -d 'any: ready once one secret synced (the seed\'s rule); all: every secret' -r -f -a "any\t'At least one secret has synced (the seed\'s rule)'
all\t'Every configured secret has synced at least once'"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l enable-tracing -d 'Export OpenTelemetry traces' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l otel-exporter-endpoint -d 'OTLP/HTTP endpoint for traces (http:// or https:// URL)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l initial-backoff -d 'First retry delay after a failure (100ms-1h)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l max-backoff -d 'Longest retry delay (100ms-24h, at least INITIAL_BACKOFF)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l backoff-multiplier -d 'Growth of the retry delay per consecutive failure (1-10)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l refresh-jitter -d 'Spread of refreshes: each comes at its interval +- this share (0%-50%, or 0-0.5), and a secret\'s first refresh after its initial sync at a random point of its interval; 0 turns both off' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l state-dir -d 'A directory of the sidecar\'s own, kept across container restarts (mode 0700): the tokens it obtained by logging in are kept there (0600), so a restart after SIGKILL, OOM or a crash reuses a valid token instead of logging in again. Unset: nothing is kept' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l ready-allow-stale -d 'Count stale secrets (files an earlier run wrote, checked against STATE_DIR, while the source cannot be read) as synced for READY_POLICY, so a restart during a Vault outage keeps the app up' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l audit-log -d 'Write audit lines (secret reads, file writes)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l audit-log-file -d 'Append audit lines to this file instead of the log output' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l shutdown-timeout -d 'Longest a graceful shutdown may take, SIGTERM/SIGINT (1s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l liveness-timeout -d 'Longest time the actor system may go without answering its heartbeat before `/health` answers 503 and `isready` fails (2s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l refresh-api -d 'Serve `POST /refresh` and `POST /refresh/{secret}` on the inspection listener (METRICS_ADDR:METRICS_PORT)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l secrets-api -d 'Serve the local secrets API (`GET /v1/secrets`, `GET /v1/secrets/{name}`, `POST /v1/secrets:batchGet`) on the inspection listener (METRICS_ADDR:METRICS_PORT) and SECRETS_API_SOCKET; never on the probe listener. It serves what the files hold' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l secrets-api-token-file -d 'A file holding the bearer token every secrets API request must send (`Authorization: Bearer ...`); re-read when it changes. Required when METRICS_ADDR is not a loopback address' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l secrets-api-socket -d 'Also serve the secrets API on this unix socket (mode 0600, or 0660 with SECRETS_API_SOCKET_GROUP): for hosts where every user shares loopback' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l secrets-api-socket-group -d 'Numeric group id given the secrets API socket, which then gets mode 0660 (the group\'s members may ask)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l watch-debounce -d 'Quiet time after a config file change before it is reloaded (10ms-1m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -s v -l version -d 'Print the version (`-v` as the Go tool has it, or `-V`)'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -l once -d 'Sync every secret once and exit: 0 if all succeeded, 1 otherwise'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "run" -d 'Sync secrets to files until stopped (the default)'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "check" -d 'Validate the config file (also as `validate`): prints every error and exits 2, or exits 0'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "validate" -d 'Validate the config file (also as `validate`): prints every error and exits 2, or exits 0'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "isready" -d 'Exit 0 if the running instance is ready, 1 if not (for healthchecks)'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "init" -d 'Print a commented starter config (or write it to --output)'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "convert" -d 'Convert an ExternalSecret, Vault Agent injector annotations or a Vault Agent HCL config into a secrets-sync config (printed); what does not convert is listed on stderr and the exit code is 1'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "schema" -d 'Print the JSON Schema of the config file (for editors and CI: `secrets-sync schema > secrets-sync.schema.json`)'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "version" -d 'Print the version and the platform'
complete -c secrets-sync -n "__fish_secrets_sync_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -s c -l config -d 'The YAML file that lists the secrets' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-addr -d 'Vault/OpenBao address; overrides secretStore.address' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-token -d 'Token for token auth; overrides secretStore.token' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-role-id -d 'AppRole role ID; overrides secretStore.roleId' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-secret-id -d 'AppRole secret ID; overrides secretStore.secretId' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-namespace -d 'Vault Enterprise / OpenBao namespace (X-Vault-Namespace)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-cacert -d 'PEM file with the CA certificate(s) that sign Vault\'s TLS certificate' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-capath -d 'Directory of PEM CA certificates; overrides secretStore.tlsCAPath' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-client-cert -d 'Client certificate (PEM) for mutual TLS and cert auth; overrides secretStore.tlsClientCert' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-client-key -d 'The client certificate\'s private key (PEM); overrides secretStore.tlsClientKey' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-tls-server-name -d 'Name to verify in Vault\'s certificate (and send as SNI) instead of the address\'s host' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-skip-verify -d 'Disable TLS certificate verification (testing only)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l watch-config -d 'Reload the config file when it changes' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-max-response-bytes -d 'Largest Vault answer accepted, in bytes (64 KiB - 64 MiB; Vault\'s own default entry size is 1 MiB)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l vault-max-secret-fields -d 'Most fields and nested values one secret may have (1 - 1 000 000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l circuit-breaker-max-requests -d 'Probes let through while the circuit breaker is half-open (1-100)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l circuit-breaker-interval -d 'Period after which the closed breaker clears its failure counts (1s-24h, 0: never)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l circuit-breaker-failure-threshold -d 'Consecutive Vault failures (no answer, 5xx) that open the breaker (1-1000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l circuit-breaker-timeout -d 'Longest time the breaker stays open before probing again (1s-1h); the first open period is shorter and grows with each re-open up to this. It bounds how long files stay old after Vault returns from an outage' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l log-level -d 'error, warn, info, debug or trace (or a tracing filter directive)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l log-format -d 'json (default) or text' -r -f -a "json\t''
text\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l http-port -d 'Port of the probes, /health and /ready (0 disables that server)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l http-bind -d 'Address the probe server binds to' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l metrics-port -d 'Port of /status and /metrics, which name secrets, paths and errors (0 disables that server). Equal to HTTP_PORT: one server on HTTP_BIND serves all four endpoints' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l metrics-addr -d 'Address of the /status and /metrics server: loopback unless set' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l enable-metrics -d 'Serve the inspection listener (METRICS_ADDR:METRICS_PORT); false turns it off like METRICS_PORT=0 (the Go tool\'s switch)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l status-file -d 'Where readiness is written for `secrets-sync isready`' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l ready-policy -d 'any: ready once one secret synced (the seed\'s rule); all: every secret' -r -f -a "any\t'At least one secret has synced (the seed\'s rule)'
all\t'Every configured secret has synced at least once'"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l enable-tracing -d 'Export OpenTelemetry traces' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l otel-exporter-endpoint -d 'OTLP/HTTP endpoint for traces (http:// or https:// URL)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l initial-backoff -d 'First retry delay after a failure (100ms-1h)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l max-backoff -d 'Longest retry delay (100ms-24h, at least INITIAL_BACKOFF)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l backoff-multiplier -d 'Growth of the retry delay per consecutive failure (1-10)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l refresh-jitter -d 'Spread of refreshes: each comes at its interval +- this share (0%-50%, or 0-0.5), and a secret\'s first refresh after its initial sync at a random point of its interval; 0 turns both off' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l state-dir -d 'A directory of the sidecar\'s own, kept across container restarts (mode 0700): the tokens it obtained by logging in are kept there (0600), so a restart after SIGKILL, OOM or a crash reuses a valid token instead of logging in again. Unset: nothing is kept' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l ready-allow-stale -d 'Count stale secrets (files an earlier run wrote, checked against STATE_DIR, while the source cannot be read) as synced for READY_POLICY, so a restart during a Vault outage keeps the app up' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l audit-log -d 'Write audit lines (secret reads, file writes)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l audit-log-file -d 'Append audit lines to this file instead of the log output' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l shutdown-timeout -d 'Longest a graceful shutdown may take, SIGTERM/SIGINT (1s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l liveness-timeout -d 'Longest time the actor system may go without answering its heartbeat before `/health` answers 503 and `isready` fails (2s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l refresh-api -d 'Serve `POST /refresh` and `POST /refresh/{secret}` on the inspection listener (METRICS_ADDR:METRICS_PORT)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l secrets-api -d 'Serve the local secrets API (`GET /v1/secrets`, `GET /v1/secrets/{name}`, `POST /v1/secrets:batchGet`) on the inspection listener (METRICS_ADDR:METRICS_PORT) and SECRETS_API_SOCKET; never on the probe listener. It serves what the files hold' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l secrets-api-token-file -d 'A file holding the bearer token every secrets API request must send (`Authorization: Bearer ...`); re-read when it changes. Required when METRICS_ADDR is not a loopback address' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l secrets-api-socket -d 'Also serve the secrets API on this unix socket (mode 0600, or 0660 with SECRETS_API_SOCKET_GROUP): for hosts where every user shares loopback' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l secrets-api-socket-group -d 'Numeric group id given the secrets API socket, which then gets mode 0660 (the group\'s members may ask)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l watch-debounce -d 'Quiet time after a config file change before it is reloaded (10ms-1m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -l once -d 'Sync every secret once and exit: 0 if all succeeded, 1 otherwise'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -s c -l config -d 'The YAML file that lists the secrets' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-addr -d 'Vault/OpenBao address; overrides secretStore.address' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-token -d 'Token for token auth; overrides secretStore.token' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-role-id -d 'AppRole role ID; overrides secretStore.roleId' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-secret-id -d 'AppRole secret ID; overrides secretStore.secretId' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-namespace -d 'Vault Enterprise / OpenBao namespace (X-Vault-Namespace)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-cacert -d 'PEM file with the CA certificate(s) that sign Vault\'s TLS certificate' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-capath -d 'Directory of PEM CA certificates; overrides secretStore.tlsCAPath' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-client-cert -d 'Client certificate (PEM) for mutual TLS and cert auth; overrides secretStore.tlsClientCert' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-client-key -d 'The client certificate\'s private key (PEM); overrides secretStore.tlsClientKey' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-tls-server-name -d 'Name to verify in Vault\'s certificate (and send as SNI) instead of the address\'s host' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-skip-verify -d 'Disable TLS certificate verification (testing only)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l watch-config -d 'Reload the config file when it changes' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-max-response-bytes -d 'Largest Vault answer accepted, in bytes (64 KiB - 64 MiB; Vault\'s own default entry size is 1 MiB)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l vault-max-secret-fields -d 'Most fields and nested values one secret may have (1 - 1 000 000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l circuit-breaker-max-requests -d 'Probes let through while the circuit breaker is half-open (1-100)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l circuit-breaker-interval -d 'Period after which the closed breaker clears its failure counts (1s-24h, 0: never)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l circuit-breaker-failure-threshold -d 'Consecutive Vault failures (no answer, 5xx) that open the breaker (1-1000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l circuit-breaker-timeout -d 'Longest time the breaker stays open before probing again (1s-1h); the first open period is shorter and grows with each re-open up to this. It bounds how long files stay old after Vault returns from an outage' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l log-level -d 'error, warn, info, debug or trace (or a tracing filter directive)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l log-format -d 'json (default) or text' -r -f -a "json\t''
text\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l http-port -d 'Port of the probes, /health and /ready (0 disables that server)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l http-bind -d 'Address the probe server binds to' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l metrics-port -d 'Port of /status and /metrics, which name secrets, paths and errors (0 disables that server). Equal to HTTP_PORT: one server on HTTP_BIND serves all four endpoints' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l metrics-addr -d 'Address of the /status and /metrics server: loopback unless set' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l enable-metrics -d 'Serve the inspection listener (METRICS_ADDR:METRICS_PORT); false turns it off like METRICS_PORT=0 (the Go tool\'s switch)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l status-file -d 'Where readiness is written for `secrets-sync isready`' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l ready-policy -d 'any: ready once one secret synced (the seed\'s rule); all: every secret' -r -f -a "any\t'At least one secret has synced (the seed\'s rule)'
all\t'Every configured secret has synced at least once'"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l enable-tracing -d 'Export OpenTelemetry traces' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l otel-exporter-endpoint -d 'OTLP/HTTP endpoint for traces (http:// or https:// URL)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l initial-backoff -d 'First retry delay after a failure (100ms-1h)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l max-backoff -d 'Longest retry delay (100ms-24h, at least INITIAL_BACKOFF)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l backoff-multiplier -d 'Growth of the retry delay per consecutive failure (1-10)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l refresh-jitter -d 'Spread of refreshes: each comes at its interval +- this share (0%-50%, or 0-0.5), and a secret\'s first refresh after its initial sync at a random point of its interval; 0 turns both off' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l state-dir -d 'A directory of the sidecar\'s own, kept across container restarts (mode 0700): the tokens it obtained by logging in are kept there (0600), so a restart after SIGKILL, OOM or a crash reuses a valid token instead of logging in again. Unset: nothing is kept' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l ready-allow-stale -d 'Count stale secrets (files an earlier run wrote, checked against STATE_DIR, while the source cannot be read) as synced for READY_POLICY, so a restart during a Vault outage keeps the app up' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l audit-log -d 'Write audit lines (secret reads, file writes)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l audit-log-file -d 'Append audit lines to this file instead of the log output' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l shutdown-timeout -d 'Longest a graceful shutdown may take, SIGTERM/SIGINT (1s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l liveness-timeout -d 'Longest time the actor system may go without answering its heartbeat before `/health` answers 503 and `isready` fails (2s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l refresh-api -d 'Serve `POST /refresh` and `POST /refresh/{secret}` on the inspection listener (METRICS_ADDR:METRICS_PORT)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l secrets-api -d 'Serve the local secrets API (`GET /v1/secrets`, `GET /v1/secrets/{name}`, `POST /v1/secrets:batchGet`) on the inspection listener (METRICS_ADDR:METRICS_PORT) and SECRETS_API_SOCKET; never on the probe listener. It serves what the files hold' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l secrets-api-token-file -d 'A file holding the bearer token every secrets API request must send (`Authorization: Bearer ...`); re-read when it changes. Required when METRICS_ADDR is not a loopback address' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l secrets-api-socket -d 'Also serve the secrets API on this unix socket (mode 0600, or 0660 with SECRETS_API_SOCKET_GROUP): for hosts where every user shares loopback' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l secrets-api-socket-group -d 'Numeric group id given the secrets API socket, which then gets mode 0660 (the group\'s members may ask)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -l watch-debounce -d 'Quiet time after a config file change before it is reloaded (10ms-1m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -s c -l config -d 'The YAML file that lists the secrets' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-addr -d 'Vault/OpenBao address; overrides secretStore.address' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-token -d 'Token for token auth; overrides secretStore.token' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-role-id -d 'AppRole role ID; overrides secretStore.roleId' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-secret-id -d 'AppRole secret ID; overrides secretStore.secretId' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-namespace -d 'Vault Enterprise / OpenBao namespace (X-Vault-Namespace)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-cacert -d 'PEM file with the CA certificate(s) that sign Vault\'s TLS certificate' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-capath -d 'Directory of PEM CA certificates; overrides secretStore.tlsCAPath' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-client-cert -d 'Client certificate (PEM) for mutual TLS and cert auth; overrides secretStore.tlsClientCert' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-client-key -d 'The client certificate\'s private key (PEM); overrides secretStore.tlsClientKey' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-tls-server-name -d 'Name to verify in Vault\'s certificate (and send as SNI) instead of the address\'s host' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-skip-verify -d 'Disable TLS certificate verification (testing only)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l watch-config -d 'Reload the config file when it changes' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-max-response-bytes -d 'Largest Vault answer accepted, in bytes (64 KiB - 64 MiB; Vault\'s own default entry size is 1 MiB)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l vault-max-secret-fields -d 'Most fields and nested values one secret may have (1 - 1 000 000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l circuit-breaker-max-requests -d 'Probes let through while the circuit breaker is half-open (1-100)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l circuit-breaker-interval -d 'Period after which the closed breaker clears its failure counts (1s-24h, 0: never)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l circuit-breaker-failure-threshold -d 'Consecutive Vault failures (no answer, 5xx) that open the breaker (1-1000)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l circuit-breaker-timeout -d 'Longest time the breaker stays open before probing again (1s-1h); the first open period is shorter and grows with each re-open up to this. It bounds how long files stay old after Vault returns from an outage' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l log-level -d 'error, warn, info, debug or trace (or a tracing filter directive)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l log-format -d 'json (default) or text' -r -f -a "json\t''
text\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l http-port -d 'Port of the probes, /health and /ready (0 disables that server)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l http-bind -d 'Address the probe server binds to' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l metrics-port -d 'Port of /status and /metrics, which name secrets, paths and errors (0 disables that server). Equal to HTTP_PORT: one server on HTTP_BIND serves all four endpoints' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l metrics-addr -d 'Address of the /status and /metrics server: loopback unless set' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l enable-metrics -d 'Serve the inspection listener (METRICS_ADDR:METRICS_PORT); false turns it off like METRICS_PORT=0 (the Go tool\'s switch)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l status-file -d 'Where readiness is written for `secrets-sync isready`' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l ready-policy -d 'any: ready once one secret synced (the seed\'s rule); all: every secret' -r -f -a "any\t'At least one secret has synced (the seed\'s rule)'
all\t'Every configured secret has synced at least once'"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l enable-tracing -d 'Export OpenTelemetry traces' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l otel-exporter-endpoint -d 'OTLP/HTTP endpoint for traces (http:// or https:// URL)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l initial-backoff -d 'First retry delay after a failure (100ms-1h)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l max-backoff -d 'Longest retry delay (100ms-24h, at least INITIAL_BACKOFF)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l backoff-multiplier -d 'Growth of the retry delay per consecutive failure (1-10)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l refresh-jitter -d 'Spread of refreshes: each comes at its interval +- this share (0%-50%, or 0-0.5), and a secret\'s first refresh after its initial sync at a random point of its interval; 0 turns both off' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l state-dir -d 'A directory of the sidecar\'s own, kept across container restarts (mode 0700): the tokens it obtained by logging in are kept there (0600), so a restart after SIGKILL, OOM or a crash reuses a valid token instead of logging in again. Unset: nothing is kept' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l ready-allow-stale -d 'Count stale secrets (files an earlier run wrote, checked against STATE_DIR, while the source cannot be read) as synced for READY_POLICY, so a restart during a Vault outage keeps the app up' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l audit-log -d 'Write audit lines (secret reads, file writes)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l audit-log-file -d 'Append audit lines to this file instead of the log output' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l shutdown-timeout -d 'Longest a graceful shutdown may take, SIGTERM/SIGINT (1s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l liveness-timeout -d 'Longest time the actor system may go without answering its heartbeat before `/health` answers 503 and `isready` fails (2s-10m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l refresh-api -d 'Serve `POST /refresh` and `POST /refresh/{secret}` on the inspection listener (METRICS_ADDR:METRICS_PORT)' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l secrets-api -d 'Serve the local secrets API (`GET /v1/secrets`, `GET /v1/secrets/{name}`, `POST /v1/secrets:batchGet`) on the inspection listener (METRICS_ADDR:METRICS_PORT) and SECRETS_API_SOCKET; never on the probe listener. It serves what the files hold' -r -f -a "true\t''
false\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l secrets-api-token-file -d 'A file holding the bearer token every secrets API request must send (`Authorization: Bearer ...`); re-read when it changes. Required when METRICS_ADDR is not a loopback address' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l secrets-api-socket -d 'Also serve the secrets API on this unix socket (mode 0600, or 0660 with SECRETS_API_SOCKET_GROUP): for hosts where every user shares loopback' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l secrets-api-socket-group -d 'Numeric group id given the secrets API socket, which then gets mode 0660 (the group\'s members may ask)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -l watch-debounce -d 'Quiet time after a config file change before it is reloaded (10ms-1m)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand isready" -l status-file -d 'The status file the running instance writes' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand isready" -l liveness-timeout -d 'A status file whose heartbeat is older than this is a wedged (or gone) process: not ready (2s-10m; the running instance\'s setting)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand isready" -s h -l help -d 'Print help'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand init" -s o -l output -d 'Write the config to this file instead of standard output (an existing file is kept unless --force)' -r -F
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand init" -l force -d 'Overwrite --output if it exists'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand init" -s h -l help -d 'Print help'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand convert" -l output-dir -d 'Directory the generated config writes its files to (default: where the source put them; /secrets for an ExternalSecret)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand convert" -l mount-path -d 'KV mount of the secrets (default: the SecretStore\'s, else `secret`)' -r
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand convert" -l kv-version -d 'KV version, v1 or v2 (default: the SecretStore\'s, else v2)' -r -f -a "v1\t''
v2\t''
1\t''
2\t''"
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand convert" -s h -l help -d 'Print help'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand schema" -s h -l help -d 'Print help'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand version" -s h -l help -d 'Print help'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "run" -d 'Sync secrets to files until stopped (the default)'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "check" -d 'Validate the config file (also as `validate`): prints every error and exits 2, or exits 0'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "isready" -d 'Exit 0 if the running instance is ready, 1 if not (for healthchecks)'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "init" -d 'Print a commented starter config (or write it to --output)'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "convert" -d 'Convert an ExternalSecret, Vault Agent injector annotations or a Vault Agent HCL config into a secrets-sync config (printed); what does not convert is listed on stderr and the exit code is 1'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "schema" -d 'Print the JSON Schema of the config file (for editors and CI: `secrets-sync schema > secrets-sync.schema.json`)'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "version" -d 'Print the version and the platform'
complete -c secrets-sync -n "__fish_secrets_sync_using_subcommand help; and not __fish_seen_subcommand_from run check isready init convert schema version help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
