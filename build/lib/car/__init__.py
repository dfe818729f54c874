"""What runs on the car (and in the simulator): loop, parts, tubs, pilot. No TensorFlow here."""
