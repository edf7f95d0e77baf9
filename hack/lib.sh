# Shell helpers the hack/ scripts share (sourced). The sourcing script defines
# `say MESSAGE...`, which prints one progress line in its own voice.

# run_logged LOGFILE LABEL CMD...: runs CMD with its output appended to LOGFILE, printing a
# heartbeat every HEARTBEAT_SECONDS (default 60) so a long step never looks hung; on
# failure, the log's last lines.
run_logged() {
  local logfile=$1 label=$2; shift 2
  local every=${HEARTBEAT_SECONDS:-60}
  printf '\n$ %s\n' "$*" >>"$logfile"
  "$@" >>"$logfile" 2>&1 &
  local pid=$! t0=$SECONDS next_beat=$((SECONDS + every))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if kill -0 "$pid" 2>/dev/null && ((SECONDS >= next_beat)); then
      say "  ... still $label ($((SECONDS - t0))s)"
      next_beat=$((next_beat + every))
    fi
  done
  if ! wait "$pid"; then
    say "FAILED: $label; last lines of $logfile:"
    tail -n 30 "$logfile" >&2
    return 1
  fi
}
