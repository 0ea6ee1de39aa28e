"""BGP wire codec (sans-I/O), and later the session FSM and transport."""
