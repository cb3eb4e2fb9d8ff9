"""The JSON Schemas of rule files and scenario files, shipped as package data and published for editors."""
