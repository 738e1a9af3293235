"""One ttkbootstrap Frame or Toplevel per screen or dialog; views render state and send commands."""
