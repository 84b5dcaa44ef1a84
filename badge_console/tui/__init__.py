"""The Textual console; imports the engine, never the other way round."""
