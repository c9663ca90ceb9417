# What the side-by-side benchmark scripts share; sourced, not run. The sourcing script
# defines `fresh DIR` (a new endpoint for one run), `stop` (ends it) and `$work`.

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
