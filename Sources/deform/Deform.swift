import ArgumentParser

@main
struct Deform: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deform",
        abstract: "Recover the 3D shape, motion and appearance of deformable things from one camera.",
        subcommands: [NRSfM.self, Render.self, Synth.self, View.self, Bench.self]
    )
}
