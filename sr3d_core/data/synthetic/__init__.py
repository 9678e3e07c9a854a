"""sr3d_core.data.synthetic: furnished rooms seen by a simulated RGB-D sensor.

mesh.py (box / cylinder primitives) -> furniture.py (one parametric model per class) ->
room.py (shell with openings, collision-free placement) -> sensor.py (open3d ray casting) ->
scene.py (a sample per preset) -> writer.py (mmdet3d v1.1 files). Presets live in presets.py.
"""
