"""The directory: support numbers and agents, their stores, who takes a call, and the operations that change them."""
