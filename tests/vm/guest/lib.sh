# Helpers of the VM test's guest side (sourced by guest/main).
# Every check appends one line to $R/checks.tsv (PASS|FAIL, phase, name, detail) and says
# it on the console (fd 3) as `VMTEST PASS name` / `VMTEST FAIL name: detail`.

say() { echo "$*" >&3; echo "$*"; }

record() { # PASS|FAIL name detail
  local detail=${3//$'\n'/ | }
  detail=${detail//$'\t'/ }
  [ "${#detail}" -le 400 ] || detail="${detail:0:400}..."
  printf '%s\t%s\t%s\t%s\n' "$1" "$PHASE" "$2" "$detail" >> "$R/checks.tsv"
  if [ "$1" = PASS ]; then say "VMTEST PASS $2${detail:+ ($detail)}"; else say "VMTEST FAIL $2: $detail"; fi
}
pass() { record PASS "$1" "${2:-}"; }
fail() { record FAIL "$1" "${2:-}"; }

unit_ctl() { # verb: systemctl VERB cloison.service; on failure, what the unit logged meanwhile first
  local since out rc
  since=$(date +%s.%N)
  out=$(systemctl "$1" cloison.service 2>&1) && return 0
  rc=$?
  journalctl -u cloison.service -a -o cat --no-pager --since "@$since" | sed 's/\x1b\[[0-9;]*m//g' \
    | grep -vE '^(cloison.service: (Consumed|Failed with|Main process exited|Control process exited|Scheduled restart|Failed at step)|(Starting|Stopping|Reloading|Stopped|Failed to start|Reload failed for) cloison.service)' \
    | tail -n 4
  echo "$out"
  return "$rc"
}

check() { # name command...: passes when the command succeeds; its output is the detail
  local name=$1 out rc; shift
  out=$("$@" 2>&1); rc=$?
  echo "--- check $name: $* (exit $rc)"; echo "$out"
  if [ "$rc" -eq 0 ]; then pass "$name" "$out"; else fail "$name" "exit $rc: $out"; fi
  return "$rc"
}

expect_eq() { # name got want
  echo "--- expect $1: got [$2] want [$3]"
  if [ "$2" = "$3" ]; then pass "$1" "$2"; else fail "$1" "got '$2', expected '$3'"; fi
}

in_ns() { # ns command...: run in a network namespace of the topology, or in the router (root)
  local n=$1; shift
  # nsenter rather than `ip netns exec`: no mount namespace and /sys remount per probe,
  # which counts under emulation.
  if [ "$n" = router ]; then "$@"; else nsenter --net="/run/netns/$n" -- "$@"; fi
}

probe() { # ns tcp|udp|ping target: open <peer> | refused | unreachable | timeout
  in_ns "$1" "$P/cloison-lab" probe "$2" "$3" --timeout-ms "${PROBE_MS:-2000}" 2>&1 | tail -n1
}

serve() { # ns tcp-ports udp-ports: start `cloison-lab serve` (from the payload) and wait for `ready`
  local n=$1 tcp=$2 udp=$3 out=/run/cloison-vmtest/serve-$1.out i
  in_ns "$n" "$P/cloison-lab" serve ${tcp:+--tcp "$tcp"} ${udp:+--udp "$udp"} > "$out" 2>&1 &
  for i in $(seq 100); do
    grep -q '^ready' "$out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "listener in $n not ready: $(cat "$out")"
  return 1
}

# Addresses of the topology (guest/topology) and of the shipped configuration.
declare -A V4=([mairie-srv]=192.168.10.5 [mairie-pc]=192.168.10.10 [kiosk]=192.168.20.15
  [poste]=192.168.30.30 [isp]=192.168.1.254 [inet-a]=198.51.100.10 [lpbox]=10.30.0.1
  [inet-b]=203.0.113.10 [router:mairie]=192.168.10.1 [router:kiosk]=192.168.20.1
  [router:poste]=192.168.30.1)
declare -A V6=([mairie-srv]=fd00:10::5 [mairie-pc]=fd00:10::10 [kiosk]=fd00:20::15
  [router:mairie]=fd00:10::1 [router:kiosk]=fd00:20::1)
declare -A UPLINK4=([isp]=192.168.1.2 [laposte]=10.30.0.2)

target_of() { # to family(4|6) what: the probe's target, or nothing when `to` has no such address
  local addr
  if [ "$2" = 6 ]; then addr=${V6[$1]:-}; else addr=${V4[$1]:-}; fi
  [ -n "$addr" ] || return 1
  case $3 in
    ping) echo "$addr" ;;
    *) if [ "$2" = 6 ]; then echo "[$addr]:${3#*/}"; else echo "$addr:${3#*/}"; fi ;;
  esac
}

outcome_ok() { # expect got
  case $1 in
    open) [[ $2 == open* ]] ;;
    reached) [[ $2 == open* || $2 == refused ]] ;;
    blocked) [[ $2 == timeout ]] ;;
    via:*) [[ $2 == "open ${UPLINK4[${1#via:}]}" ]] ;;
    notvia) [[ $2 != open* ]] ;;
    *) return 1 ;;
  esac
}

run_matrix() { # label matrix-file: probes every row (in parallel, 24 at a time), one check per row and family
  local label=$1 file=$2 dir n=0 from to what expect want why fam tgt failed=0 total=0
  dir=$(mktemp -d /run/cloison-vmtest/matrix.XXXX)
  while read -r from to what expect why; do
    [[ -z $from || $from == \#* ]] && continue
    for fam in 4 6; do
      [ "$fam" = 6 ] && [ -z "${V6[$from]:-}" ] && continue
      tgt=$(target_of "$to" "$fam" "$what") || continue
      [[ $expect == via:* || $expect == notvia ]] && [ "$fam" = 6 ] && continue
      n=$((n + 1))
      # open4: open over IPv4, blocked over IPv6 (DHCP's udp/67; DHCPv6 is udp/547).
      want=$expect
      [ "$expect" = open4 ] && { [ "$fam" = 4 ] && want=open || want=blocked; }
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$from" "$to" "$what" "$want" "$fam" "$tgt" "$why" > "$dir/$n.row"
    done
  done < "$file"
  # shellcheck disable=SC2016
  ls "$dir"/*.row | xargs -P 24 -I{} bash -c '
    IFS=$'"'\t'"' read -r from to what expect fam tgt why < "$1"
    kind=${what%%/*}
    . "$2"
    probe "$from" "$kind" "$tgt" > "${1%.row}.got"' _ {} "$P/guest/lib.sh"
  for row in "$dir"/*.row; do
    IFS=$'\t' read -r from to what expect fam tgt why < "$row"
    got=$(cat "${row%.row}.got")
    total=$((total + 1))
    echo "matrix $label: $from -> $to ($tgt) $what IPv$fam: expected $expect, got $got"
    if ! outcome_ok "$expect" "$got"; then
      failed=$((failed + 1))
      fail "$label: $from -> $to $what IPv$fam is $expect" "got '$got' ($why)"
    fi
  done
  if [ "$failed" -eq 0 ] && [ "$total" -gt 0 ]; then
    pass "$label: isolation matrix, $total probes over the trunk" "every row as docs/isolation.md says (tests/vm/guest/matrix)"
  else
    fail "$label: isolation matrix" "$failed of $total probes differ"
  fi
  cp "$file" "$R/matrix.txt" 2>/dev/null
}

journal_wait() { # seconds journalctl-matches...: the matching cloison entries (JSON lines), waiting for one
  local i out t=$1
  systemctl -q is-active cloison.service || t=1   # nothing will come: do not wait
  for i in $(seq $(( t * 4 ))); do
    out=$(journalctl -q -t cloison -o json "${@:2}" 2>/dev/null)
    [ -n "$out" ] && { echo "$out"; return 0; }
    sleep 0.25
  done
  return 1
}

fields_differ() { # entry-json want-json: "FIELD=got (want X)" for every field that differs
  jq -r --argjson want "$2" '. as $e | [$want | to_entries[] | select(($e[.key] // "(absent)") != .value)
    | "\(.key)=\($e[.key] // "(absent)") (want \(.value))"] | join(", ")' <<< "$1"
}

check_entry() { # name entry-json want-json [required-fields...]
  local name=$1 entry=$2 want=$3 diff f missing=""
  shift 3
  diff=$(fields_differ "$entry" "$want")
  for f in "$@"; do
    jq -e --arg f "$f" 'has($f)' <<< "$entry" >/dev/null || missing+=" $f"
  done
  echo "--- entry $name: $entry"
  if [ -z "$diff" ] && [ -z "$missing" ]; then
    pass "$name" "$(jq -r .MESSAGE <<< "$entry")"
  else
    fail "$name" "${diff}${missing:+ missing:$missing}; MESSAGE: $(jq -r .MESSAGE <<< "$entry")"
  fi
}
