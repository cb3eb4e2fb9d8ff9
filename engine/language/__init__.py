"""Reading rule files: their text with positions (source), the declarations' model, the expression
language and its functions, the structural checks and the loader that turns a file into a domain."""
