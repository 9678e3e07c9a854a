#!/usr/bin/env bash
# The synthetic-world ablation (config/grids/world_ablation.yaml), in three steps:
#   training/world_ablation.sh data           # the variants' training sets, into data/synth_real (idempotent)
#   python training/grid.py run world_ablation --jobs 2
#   training/world_ablation.sh real DIR       # every finished run on the real frames in DIR (mmdet3d SUN RGB-D layout)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=data/synth_real
N=600
case "${1:-}" in
data)
    # split name -> --world-off factors ("legacy" is the original world: the sunrgbd-like preset)
    declare -A OFF=([all]="" [no_sizes]=sizes [no_parts]=parts [no_clutter]=clutter [no_walls]=walls
                    [no_sensor]=sensor [no_camera]=camera [no_lighting]=lighting)
    for split in all legacy no_sizes no_parts no_clutter no_walls no_sensor no_camera no_lighting; do
        [[ -f $OUT/sunrgbd_infos_abl_$split.pkl ]] && continue
        if [[ $split == legacy ]]; then
            python training/make_synthetic.py --preset sunrgbd-like --num-scenes $N --seed 0 --out $OUT \
                --split abl_$split --workers "${WORKERS:-2}"
        else
            python training/make_synthetic.py --preset sunrgbd-real --num-scenes $N --seed 0 --out $OUT \
                --split abl_$split --workers "${WORKERS:-2}" ${OFF[$split]:+--world-off ${OFF[$split]}}
        fi
    done
    ;;
real)
    [[ -n "${2:-}" ]] || { echo "usage: $0 real DIR" >&2; exit 2; }
    for ckpt in runs/grids/world_ablation/*/seed*/final.pt; do
        run=$(dirname "$ckpt"); rel=${run#runs/grids/}
        dest=docs/results/grids/$rel
        [[ -f $dest/result.json ]] || continue
        sr3d-evaluate --checkpoint "$ckpt" --data-root "$2" --split val --json "$dest/real.json" > "$run/real.log"
        echo "$rel: $(grep -m1 '^==' "$run/real.log")"
    done
    ;;
*)
    echo "usage: $0 data | real DIR" >&2; exit 2 ;;
esac
