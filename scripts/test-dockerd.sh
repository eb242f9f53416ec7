#!/usr/bin/env bash
# A private Docker Engine for tests: its own socket, data root and exec root, no iptables, no default
# bridge, and HTTP(S)_PROXY pointing at a closed loopback port so that no pull ever leaves the machine
# (a pull fails at once; `start` checks that). Idempotent; needs root and Debian's docker.io.
#   scripts/test-dockerd.sh start|stop|status      (DIR defaults to /tmp/swarmkit-test-dockerd)
set -euo pipefail
DIR=${SWARMKIT_TEST_DOCKERD_DIR:-/tmp/swarmkit-test-dockerd}
SOCK="$DIR/docker.sock"
docker_() { DOCKER_CONFIG="$DIR/config" docker -H "unix://$SOCK" "$@"; }
answers() {
  [ -S "$SOCK" ] && DOCKER_CONFIG="$DIR/config" timeout 5 docker -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

case "${1:-}" in
  start)
    if answers; then echo "dockerd already answers at unix://$SOCK"; exit 0; fi
    command -v dockerd >/dev/null || { echo "dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }
    mkdir -p "$DIR/root" "$DIR/exec" "$DIR/config"
    if [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then kill "$(cat "$DIR/pid")"; sleep 1; fi
    rm -f "$SOCK" "$DIR/pid"
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
      nohup dockerd --host "unix://$SOCK" --data-root "$DIR/root" --exec-root "$DIR/exec" \
        --pidfile "$DIR/pid" --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        >"$DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do answers && break; sleep 0.5; done
    answers || { echo "dockerd did not come up; see $DIR/dockerd.log" >&2; tail -20 "$DIR/dockerd.log" >&2; exit 1; }
    # No pull may reach a registry: it must fail at once on the closed proxy port.
    t0=$(date +%s)
    if out=$(DOCKER_CONFIG="$DIR/config" timeout 30 docker -H "unix://$SOCK" pull busybox:latest 2>&1); then
      echo "a pull succeeded: the test engine must not reach any registry" >&2; exit 1
    fi
    if [ $(( $(date +%s) - t0 )) -gt 10 ]; then echo "a pull took too long to fail: $out" >&2; exit 1; fi
    case "$out" in *127.0.0.1:9*|*proxyconnect*) ;; *) echo "a pull failed for another reason: $out" >&2; exit 1;; esac
    echo "dockerd $(docker_ version --format '{{.Server.Version}}') at unix://$SOCK (pulls fail at once: checked)"
    ;;
  stop)
    if [ -f "$DIR/pid" ]; then
      pid=$(cat "$DIR/pid")
      # Containers first, so that nothing of ours keeps running.
      ids=$(docker_ ps -aq 2>/dev/null || true)
      [ -n "$ids" ] && docker_ rm -f $ids >/dev/null 2>&1 || true
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$SOCK" "$DIR/pid"
    ;;
  status)
    if answers; then echo "unix://$SOCK"; else exit 1; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
