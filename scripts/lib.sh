# scripts/lib.sh — shell helpers shared by scripts/runtime, scripts/base-image and
# scripts/test-env. Sourced, never run:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Plain bash; defines functions only and runs nothing. The sourcing script defines
# say MESSAGE (its progress line, on stderr) and die MESSAGE (say, then exit 1), and
# sets LOG (the file long steps write to) before calling them.
# Project rule: no shell strings — every command is an argument vector.

# pkg_installed PACKAGE: succeed when dpkg has PACKAGE installed.
pkg_installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# logged DESCRIPTION CMD ARGS...: run a long step with its output in $LOG; when it
# fails, show the log's last lines on stderr and die.
logged() {
	local what=$1
	shift
	say "$what…"
	echo "=== $(date -u +%FT%TZ) $what: $*" >>"$LOG"
	if ! "$@" >>"$LOG" 2>&1 </dev/null; then
		echo "----- last lines of $LOG -----" >&2
		tail -n 40 "$LOG" >&2
		die "$what failed (full log: $LOG)"
	fi
}
