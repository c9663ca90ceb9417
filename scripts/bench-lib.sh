# What the side-by-side benchmarks against the course share; sourced, not run, with `$root`
# set. It checks for the course's tools, builds groundup, and brings in the course's commands
# (course_all). The sourcing script defines `fresh DIR` (a new endpoint for one run), `stop`
# (ends it) and `$work`.

missing() { echo "$1 is missing: $2" >&2; exit 1; }
command -v aws >/dev/null || missing aws "pip install awscli"
command -v cfssl >/dev/null || missing cfssl "apt-get install golang-cfssl"
command -v cfssljson >/dev/null || missing cfssljson "apt-get install golang-cfssl"
command -v jq >/dev/null || missing jq "apt-get install jq (the course's image lookup pipes into it)"
cargo build --quiet --manifest-path "$root/Cargo.toml" --workspace --bins
groundup="$("$root/scripts/bin-dir.sh")/groundup"
# shellcheck source=course-infra.sh
. "$root/scripts/course-infra.sh"
# shellcheck source=course-pki.sh
. "$root/scripts/course-pki.sh"

timed() { # name round: runs `name DIR` on a fresh endpoint, prints its wall seconds
  local dir="$work/$1-$2" start end
  mkdir -p "$dir"
  fresh "$dir"
  start=$(date +%s.%N)
  "$1" "$dir"
  end=$(date +%s.%N)
  stop
  echo "$end - $start" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
