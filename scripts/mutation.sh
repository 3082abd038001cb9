#!/usr/bin/env bash
# Mutation testing of the rule modules (a developer tool, not a CI step): how many one-line changes
# to the rules do the tests catch? mutmut 3 mutates the rule functions ([tool.mutmut] in
# pyproject.toml says which files and which tests); scripts/mutate_extra.py mutates what mutmut 3
# cannot (the transition table, the registered gates, the audit signal receivers); then
# scripts/mutation_report.py prints killed/total per module and the overall kill rate.
#
#   scripts/mutation.sh                      every area (about an hour on two cores)
#   scripts/mutation.sh calendar engine      some areas: calendar transitions gates approvals engine audit
#   JOBS=4 scripts/mutation.sh               more parallel workers (default 2)
#   SURVIVORS=1 scripts/mutation.sh ...      also list every surviving mutant
#   REPORT_ONLY=1 scripts/mutation.sh        only the report of the last run
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
JOBS=${JOBS:-2}
[[ -x .venv/bin/mutmut ]] || { echo "mutmut is missing: run 'make venv' (it is in the dev extras)" >&2; exit 2; }

areas=("$@")
if [[ -z ${REPORT_ONLY:-} ]]; then
  mapfile -t globs < <($PY scripts/mutation_report.py --globs "${areas[@]}")
  started=$(date +%s)
  # mutmut redraws a progress line; keep its log, show its summary.
  nice -n 19 .venv/bin/mutmut run --max-children "$JOBS" "${globs[@]}" >mutants-run.log 2>&1 || {
    tail -c 3000 mutants-run.log | tr '\r' '\n' | tail -20 >&2
    exit 1
  }
  extra=()
  for area in "${areas[@]:-calendar transitions gates approvals engine audit}"; do
    case $area in
      *transitions*) extra+=(--only workflow/transitions.py) ;;&
      *gates*) extra+=(--only releases/gates.py --only approvals/gates.py) ;;&
      *audit*) extra+=(--only environments/permission_log.py) ;;&
      *) ;;
    esac
  done
  if ((${#extra[@]})); then
    nice -n 19 $PY scripts/mutate_extra.py --jobs "$JOBS" "${extra[@]}" >>mutants-run.log 2>&1
  fi
  # what killed workers (timeouts) leave behind
  rm -rf mutants/var/tmp var/tmp
  rm -f mutants/var/mutmut-[0-9]*.sqlite3* var/mutmut-[0-9]*.sqlite3*
  echo "mutation run: $(($(date +%s) - started)) s (log: mutants-run.log)"
fi
$PY scripts/mutation_report.py ${SURVIVORS:+--survivors} "${areas[@]}"
