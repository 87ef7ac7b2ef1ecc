#!/bin/bash
# The benchmark runs behind docs/benchmark.md's results (bundled model; cached and resumable):
#   bench/run_reference_tables.sh image|text|val|loo|local   (from an activated environment)
cd "$(dirname "$0")/.." || exit 1
DATA="${MONAI_IMC_DATA:-../shared/data}"
export OMP_NUM_THREADS=1
D="--dataset slake:$DATA/slake --dataset vqa-rad:$DATA/vqa_rad"; T="--split test"
IMG=bias_field,blur,ghosting,gibbs,jpeg,low_dose,motion,rician,spike
TXT=abbreviation,asr,distractor,ocr,typo
case $1 in
image) nice -n 5 monai-imc bench --model bundles/monai_imc_vqa $D $T --noises $IMG --severities 3,5 \
  --methods none,pdc,pdc-oracle,denoise,restore,imc,imc+restore,no-image,shuffled-image --limit 50 --threads 1 --denoise-filter median3 \
  --out results/final-image ;;
text) nice -n 5 monai-imc bench --model bundles/monai_imc_vqa $D $T --noises $TXT --severities 3 \
  --methods none,sms,imc,repass,spellcheck --limit 100 --threads 1 --out results/final-text ;;
local) nice -n 5 monai-imc bench --model bundles/monai_imc_vqa $D $T --noises $IMG --local --severities 3 \
  --methods none,pdc,restore --limit 50 --threads 1 --out results/final-local ;;
loo) for n in ${IMG//,/ }; do nice -n 5 monai-imc bench --model bundles/monai_imc_vqa $D $T --noises $n --severities 3,5 \
  --methods none,pdc,imc --leave-out $n --limit 50 --threads 1 --out results/final-loo-$n; done ;;
esac
# the default's choice (pdc or pdc + restore) on the validation split
case $1 in
val) nice -n 5 monai-imc bench --model bundles/monai_imc_vqa $D --split validate --noises $IMG --severities 3,5 \
  --methods none,pdc,restore,imc+restore --limit 50 --threads 1 --out results/final-val ;;
esac
