//! A Meridian node.
