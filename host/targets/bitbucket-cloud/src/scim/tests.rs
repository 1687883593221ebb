//! Mode two against the simulator.
