import Testing
import Foundation
@testable import DeformRender
import DeformTensor

@Suite struct RenderDemoTests {
    /// The orbit camera looks at the origin from the given distance and elevation.
    @Test func orbitCameraLooksAtTheOrigin() throws {
        for angle: Float in [0, 75, 210] {
            let camera = try RenderDemo.orbitCamera(angle: angle, width: 64, height: 48, radius: 3.6, elevation: 28)
            let (pixels, depth) = camera.project(Tensor([0, 0, 0], shape: [1, 3]))
            #expect(abs(pixels.scalars[0] - 32) < 1e-4 && abs(pixels.scalars[1] - 24) < 1e-4)
            #expect(abs(depth.scalars[0] - 3.6) < 1e-4)
            // World up (+y) appears upwards in the image (OpenCV: smaller row).
            let up = camera.project(Tensor([0, 1, 0], shape: [1, 3])).pixels.scalars
            #expect(up[1] < 24)
            #expect(abs(camera.center[1] - 3.6 * sin(28 * .pi / 180)) < 1e-4)
        }
    }

    /// Every renderer draws its object where it should be: the torus covers a ring of pixels at
    /// depths between the nearest and farthest torus points, the Gaussians are visible, the smoke
    /// is at the centre of the view and inside its box.
    @Test func demoFrameShowsEveryObject() throws {
        let scene = DemoScene.make(gaussians: 120, torusSegments: (36, 14), gridSize: 16)
        let camera = try RenderDemo.orbitCamera(angle: 30, width: 48, height: 48)
        let layers = try RenderDemo.frame(scene, camera: camera)
        let mesh = layers[0], splats = layers[1], smoke = layers[2]
        let meshCovered = mesh.alpha.scalars.filter { $0 > 0 }.count
        #expect(meshCovered > 300 && meshCovered < 48 * 48 / 2)
        // Torus points lie within 1.38 of the origin, the camera 3.6 away.
        let meshDepths = zip(mesh.depth.scalars, mesh.alpha.scalars).filter { $1 > 0 }.map { $0.0 }
        #expect(meshDepths.min()! > 3.6 - 1.39 && meshDepths.max()! < 3.6 + 1.39)
        #expect(splats.alpha.scalars.filter { $0 > 0.5 }.count > 50)
        let centre = 24 * 48 + 24
        #expect(smoke.alpha.scalars[centre] > 0.5)
        #expect(abs(smoke.depth.scalars[centre] - 3.6) < 0.7 + 0.01)
        // Corners see only the background.
        #expect(smoke.alpha.scalars[0] == 0 && mesh.alpha.scalars[0] == 0)
        let sheet = RenderDemo.sheet(layers, width: 48, height: 48)
        #expect(sheet.shape == [96, 144, 3])
        #expect(sheet.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
}
