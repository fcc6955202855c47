"""The canvas: scene items for nodes, ports and wires, the view, and the undo commands."""
