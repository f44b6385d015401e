// The OpKey module re-exports the generated bindings (module OpKeyBindings: OpKey, Key,
// KeyGuide, UnlockError, ...), so the app needs `import OpKey` only.
@_exported import OpKeyBindings
