"""convdesigner's PySide6 designer: a node-graph editor over engine.Graph (DESIGN.md section 2)."""
