#!/usr/bin/env bash
# What InfluxDB's own first-start set-up (DOCKER_INFLUXDB_INIT_*) does not do, done with the
# influx CLI of the influxdb:2 image. Compose runs it as the influxdb-init service, k3s as the
# influxdb-init Job (a copy in deploy/k3s/base/influxdb-init/). Safe to run again and again:
#   1. the long-term bucket $P1_LONG_BUCKET (retention $P1_LONG_RETENTION, 0 = forever) next
#      to the raw bucket $P1_RAW_BUCKET (whose retention the set-up gave, INFLUX_RETENTION);
#   2. the task p1-downsample-1m (downsample.flux): raw -> 1-minute aggregates -> long-term;
#   3. a read-only token for Grafana (read both buckets) and a write-only token for the
#      recorder (write both buckets): kept while still valid, made anew otherwise, and handed
#      over as files $P1_TOKEN_DIR/{grafana,recorder}/token (compose: one volume each) or,
#      with P1_K8S_SECRETS=1, as the Secrets influx-grafana-token / influx-recorder-token
#      (key "token") through the Kubernetes API (the Job's service account may do just that).
# The admin token (INFLUX_TOKEN here) stays with InfluxDB and this script. See docs/deployment.md.
set -euo pipefail

log() { printf 'influxdb-init: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

: "${INFLUX_HOST:?INFLUX_HOST: the InfluxDB URL, e.g. http://influxdb:8086}"
: "${INFLUX_TOKEN:?INFLUX_TOKEN: the admin token InfluxDB was set up with}"
: "${INFLUX_ORG:?INFLUX_ORG: the organisation}"
RAW=${P1_RAW_BUCKET:?P1_RAW_BUCKET: the raw bucket (INFLUX_BUCKET)}
LONG=${P1_LONG_BUCKET:-${RAW}_long}
LONG_RETENTION=${P1_LONG_RETENTION:-0}
TASK_FILE=${P1_TASK_FILE:-$(dirname "$0")/downsample.flux}
TASK_NAME=p1-downsample-1m
WAIT_S=${P1_WAIT_S:-600}
WORK=${TMPDIR:-/tmp}
export INFLUX_HOST INFLUX_TOKEN
# no CLI profile: everything comes from the environment (the variable has both names across CLI versions)
export INFLUX_CLI_CONFIGS_PATH=$WORK/influx-configs INFLUX_CONFIGS_PATH=$WORK/influx-configs

for name in "$INFLUX_ORG" "$RAW" "$LONG"; do
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "'$name': the organisation and bucket names may hold letters, digits, '.', '_' and '-' only"
done
[[ -r $TASK_FILE ]] || die "cannot read the task $TASK_FILE"

# -- 0. InfluxDB up and set up ------------------------------------------------------------------
deadline=$((SECONDS + WAIT_S))
until raw_row=$(influx bucket list --org "$INFLUX_ORG" --name "$RAW" --hide-headers 2>"$WORK/err") \
    && [[ -n $raw_row ]]; do
  if ((SECONDS >= deadline)); then
    die "no bucket $RAW in organisation $INFLUX_ORG at $INFLUX_HOST after ${WAIT_S}s: $(tail -n1 "$WORK/err")"
  fi
  sleep 5
done
raw_id=$(cut -f1 <<<"$raw_row")
raw_retention=$(cut -f3 <<<"$raw_row")
log "raw bucket $RAW ($raw_id): retention $raw_retention"
if [[ $raw_retention == infinite ]]; then
  log "warning: $RAW keeps raw data forever; once its history is in $LONG (docs/deployment.md," \
      "'Retention on an existing install'): influx bucket update --id $raw_id --retention 30d"
fi

# -- 1. the long-term bucket ------------------------------------------------------------------------
if long_row=$(influx bucket list --org "$INFLUX_ORG" --name "$LONG" --hide-headers 2>/dev/null) \
    && [[ -n $long_row ]]; then
  log "long-term bucket $LONG ($(cut -f1 <<<"$long_row")): retention $(cut -f3 <<<"$long_row")"
else
  long_row=$(influx bucket create --org "$INFLUX_ORG" --name "$LONG" --retention "$LONG_RETENTION" \
      --description "p1: 1-minute aggregates of $RAW, quarter and month records" --hide-headers)
  log "long-term bucket $LONG ($(cut -f1 <<<"$long_row")) created: retention $(cut -f3 <<<"$long_row")"
fi
long_id=$(cut -f1 <<<"$long_row")

# -- 2. the downsampling task ----------------------------------------------------------------------
sed -e "s/@RAW_BUCKET@/$RAW/g" -e "s/@LONG_BUCKET@/$LONG/g" -e "s/@ORG@/$INFLUX_ORG/g" \
    "$TASK_FILE" >"$WORK/downsample.flux"
task_id=$(influx task list --org "$INFLUX_ORG" --hide-headers \
    | awk -F'\t' -v n="$TASK_NAME" '$2 == n {print $1; exit}')
if [[ -n $task_id ]]; then
  influx task update --id "$task_id" --file "$WORK/downsample.flux" --hide-headers >/dev/null
  log "task $TASK_NAME ($task_id) updated: every 5m, $RAW -> $LONG"
else
  task_id=$(influx task create --org "$INFLUX_ORG" --file "$WORK/downsample.flux" --hide-headers | cut -f1)
  log "task $TASK_NAME ($task_id) created: every 5m, $RAW -> $LONG"
fi

# -- 3. the tokens ------------------------------------------------------------------------------------
SA=/var/run/secrets/kubernetes.io/serviceaccount
k8s() {  # METHOD PATH [JSON BODY] -> HTTP status on stdout, answer in $WORK/k8s.json
  printf 'Authorization: Bearer %s\n' "$(cat "$SA/token")" >"$WORK/k8s.auth"
  curl -sS -o "$WORK/k8s.json" -w '%{http_code}' --cacert "$SA/ca.crt" -H "@$WORK/k8s.auth" \
      -H 'Content-Type: application/json' -X "$1" ${3:+--data-binary "$3"} \
      "https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}$2"
}

current_token() {  # NAME -> the token handed over last time, if any
  if [[ ${P1_K8S_SECRETS:-0} == 1 ]]; then
    local ns status
    ns=$(cat "$SA/namespace")
    status=$(k8s GET "/api/v1/namespaces/$ns/secrets/influx-$1-token")
    [[ $status == 200 ]] || return 0
    sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' "$WORK/k8s.json" | base64 -d
  elif [[ -s ${P1_TOKEN_DIR:?P1_TOKEN_DIR or P1_K8S_SECRETS=1}/$1/token ]]; then
    cat "$P1_TOKEN_DIR/$1/token"
  fi
}

hand_over() {  # NAME TOKEN OWNER_UID
  if [[ ${P1_K8S_SECRETS:-0} == 1 ]]; then
    local ns body status
    ns=$(cat "$SA/namespace")
    body=$(printf '{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"influx-%s-token","namespace":"%s","labels":{"app.kubernetes.io/part-of":"p1-energy-stack","app.kubernetes.io/managed-by":"influxdb-init"}},"data":{"token":"%s"}}' \
        "$1" "$ns" "$(printf '%s' "$2" | base64 -w0)")
    status=$(k8s PUT "/api/v1/namespaces/$ns/secrets/influx-$1-token" "$body")
    if [[ $status == 404 ]]; then
      status=$(k8s POST "/api/v1/namespaces/$ns/secrets" "$body")
    fi
    [[ $status == 200 || $status == 201 ]] || die "Secret influx-$1-token: HTTP $status $(head -c 300 "$WORK/k8s.json")"
    log "Secret influx-$1-token written"
  else
    mkdir -p "$P1_TOKEN_DIR/$1"
    (umask 077 && printf '%s\n' "$2" >"$P1_TOKEN_DIR/$1/token.new")
    chown "$3" "$P1_TOKEN_DIR/$1/token.new"
    mv "$P1_TOKEN_DIR/$1/token.new" "$P1_TOKEN_DIR/$1/token"
    log "$P1_TOKEN_DIR/$1/token written (owner uid $3, mode 0600)"
  fi
}

ensure_token() {  # NAME OWNER_UID PERMISSION-FLAGS...
  local name=$1 owner=$2 desc="p1 $1" current
  shift 2
  current=$(current_token "$name")
  if [[ -n $current ]] && influx auth list --org "$INFLUX_ORG" --hide-headers \
      | awk -F'\t' -v d="$desc" -v t="$current" '$2 == d && $3 == t {found = 1} END {exit !found}'; then
    log "token '$desc' still valid: kept"
    return
  fi
  # gone, never made, or not readable back (hashed tokens): replace every token of that name
  influx auth list --org "$INFLUX_ORG" --hide-headers | awk -F'\t' -v d="$desc" '$2 == d {print $1}' \
    | while read -r old; do
        influx auth delete --id "$old" >/dev/null
        log "token '$desc' ($old) deleted"
      done
  local row
  row=$(influx auth create --org "$INFLUX_ORG" --description "$desc" "$@" --hide-headers)
  log "token '$desc' ($(cut -f1 <<<"$row")) created: $*"
  hand_over "$name" "$(cut -f3 <<<"$row")" "$owner"
  if [[ -n $current ]]; then  # the reader started with the old one (read at start only)
    local service=${name/recorder/p1-recorder}
    log "restart $service to use the new token (docker compose restart $service; k3s: kubectl -n p1 rollout restart deployment $service)"
  fi
}

ensure_token grafana "${P1_GRAFANA_UID:-472}" --read-bucket "$raw_id" --read-bucket "$long_id"
ensure_token recorder "${P1_RECORDER_UID:-10001}" --write-bucket "$raw_id" --write-bucket "$long_id"
log "done"
