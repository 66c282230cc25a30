# The small text sets of bench/text_epochs_cap.sh and bench/text_patience_runs.sh, sourced by both:
# `small_set_args SET` prints the `cnnkit train text-cls` arguments of SET (docs, trec1k, sst2k,
# mr1k, sample). Needs $S (../shared/data/text) and /tmp/longdoc/docs.csv (bench/make_long_docs.py).
small_set_args() {
  case $1 in
    docs) echo "--data /tmp/longdoc/docs.csv --set data.test_split=0.2";;
    trec1k) echo "--data $S/trec --set data.limit=1000";;
    sst2k) echo "--data $S/sst2 --set data.limit=1000";;
    mr1k) echo "--data $S/mr/all.csv --set data.limit=1250 --set data.test_split=0.2";;
    sample) echo "";;
  esac
}
