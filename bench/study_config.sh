# Sourced by the bench scripts: writes the study config they time (kgain's side of a comparison).
#   kgain_bench_config FILE DATASET MODEL LIMIT_PER_CLASS INPUT_SIZE [BATCH_SIZE]
# DATASET is a folder of ../shared/data with a manifest.csv, MODEL a file of ../shared/models;
# pretrained + 3 random seeds, logistic probe at C = 1, accuracy only, no bootstrap or CKA.
kgain_bench_config() {
  local shared
  shared=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared" && pwd)
  cat > "$1" <<EOF
[run]
threads = 2
batch_size = ${6:-32}
[dataset]
plugin = "manifest"
root = "$shared/data/$2"
limit_per_class = $4
[backbone]
plugin = "torchscript"
file = "$shared/models/$3"
[features]
input_size = $5
[variants]
random_seeds = [0, 1, 2]
[probe]
plugin = "logistic"
C = 1.0
[metrics]
names = ["accuracy"]
[transferability]
names = []
cka = false
[analysis]
bootstrap = 0
EOF
}
