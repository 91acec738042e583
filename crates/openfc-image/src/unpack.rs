//! Layers applied into one flattened tree (containers.md §3). Owned by the unpack work.
